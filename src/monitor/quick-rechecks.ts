/**
 * The waits before the quick looks that follow a break of the writer's connection. A replica's
 * IO thread hears a killed mysqld's close 5-10 ms after the manager does, so the woken cycle often
 * finds no other host that agrees yet: the first look comes soon after it, and the spacing
 * doubles so that a port that keeps resetting is not a busy loop. Five looks cover about 300 ms;
 * after them the interval applies again.
 */
export const QUICK_RECHECK_DELAYS_MS: readonly number[] = [10, 20, 40, 80, 160];

/**
 * The quick looks still to come after the writer's connection broke, for as long as the writer's
 * port keeps answering that nothing serves (refused, or reset while the killed process is torn
 * down) and no failover happened: the daemon's loop takes the next one's wait when it is shorter
 * than the rest of the interval.
 */
export class QuickRechecks {
  private pending: number[] = [];

  constructor(private readonly delays: readonly number[] = QUICK_RECHECK_DELAYS_MS) {}

  /** The writer's connection broke: the looks start over. */
  arm(): void {
    this.pending = [...this.delays];
  }

  /** The writer answers again, or another host holds the role: no more quick looks. */
  disarm(): void {
    this.pending = [];
  }

  get armed(): boolean {
    return this.pending.length > 0;
  }

  /** The wait before the next cycle: the next quick look's, when it comes sooner than `scheduled`. */
  nextWait(scheduled: number): number {
    const quick = this.pending.shift();
    return quick === undefined ? scheduled : Math.min(scheduled, quick);
  }
}
