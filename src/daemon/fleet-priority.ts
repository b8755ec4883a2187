/**
 * Several clusters in one process share one event loop. While one of them has lost its writer
 * (its idle connection to it broke) and until the cycle that decided on it ended, the other
 * clusters' routine cycles wait to start: the failing cluster's checks, decision and failover
 * steps then do not queue behind a hundred clusters' checks, nor their servers' answers.
 *
 * Bounded both ways, so that no cluster's monitoring can be starved by another's trouble: a
 * cluster counts as urgent for at most `holdMs` from when it became so (a writer that keeps
 * breaking its connection cannot hold the others for longer than that each time), and a cycle
 * waits for at most `holdMs` in all, or its own cluster's interval when that is shorter. A
 * cluster that is urgent itself never waits, so two clusters failing at once both go first.
 */
export class FleetPriority {
  /** Urgent clusters and when each became so. */
  private readonly urgent = new Map<string, number>();
  private waiters: Array<() => void> = [];

  constructor(
    readonly holdMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** `cluster` lost its writer: the others' cycles wait until end() or holdMs. */
  begin(cluster: string): void {
    if (this.urgent.has(cluster)) return;
    this.urgent.set(cluster, this.now());
    // A cluster waiting in yieldTo() that became urgent itself goes now.
    this.release();
  }

  /** `cluster`'s trouble was decided on (failed over, withheld, or its writer answers again). */
  end(cluster: string): void {
    if (this.urgent.delete(cluster)) this.release();
  }

  /** Another cluster than `cluster` is urgent now. */
  othersUrgent(cluster: string): boolean {
    return this.othersDeadline(cluster) !== undefined;
  }

  /**
   * Before a routine cycle of `cluster`: resolves at once when no other cluster is urgent, else
   * when none is any more, `cluster` became urgent itself, or `maxWaitMs` (at most holdMs) have
   * passed: a cluster whose interval is shorter than holdMs passes its own interval as the bound.
   * Returns how long it waited.
   */
  async yieldTo(cluster: string, maxWaitMs = this.holdMs): Promise<number> {
    const bound = Math.min(maxWaitMs, this.holdMs);
    const started = this.now();
    let waited = 0;
    for (;;) {
      if (this.urgent.has(cluster)) return waited;
      const deadline = this.othersDeadline(cluster);
      if (deadline === undefined) return waited;
      const left = Math.min(deadline, started + bound) - this.now();
      if (left <= 0) return waited;
      await new Promise<void>((resolve) => {
        const released = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          this.waiters = this.waiters.filter((waiter) => waiter !== released);
          resolve();
        }, left);
        this.waiters.push(released);
      });
      waited = this.now() - started;
    }
  }

  /** When the last of the other clusters' urgencies expires; undefined when none is urgent. */
  private othersDeadline(cluster: string): number | undefined {
    const now = this.now();
    let latest: number | undefined;
    for (const [name, since] of this.urgent) {
      const expires = since + this.holdMs;
      if (expires <= now) {
        this.urgent.delete(name);
        continue;
      }
      if (name !== cluster && (latest === undefined || expires > latest)) latest = expires;
    }
    return latest;
  }

  private release(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const done of waiting) done();
  }
}
