/**
 * Alertmanager resends a group every group_interval/repeat_interval. The same alert
 * (fingerprint + startsAt + status) is handled once; later copies are answered "duplicate".
 * Bounded in size and time; in memory only, so after a daemon restart a resend reaches the
 * engine once more, which is safe because the engine re-checks live state and is idempotent.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly ttlMs = 3_600_000,
    private readonly maxEntries = 10_000,
  ) {}

  static key(alert: { fingerprint?: string; name: string; labels: Record<string, string>; startsAt: string; status: string }): string {
    const identity = alert.fingerprint ?? JSON.stringify(Object.entries(alert.labels).sort());
    return `${identity}|${alert.startsAt}|${alert.status}`;
  }

  /** Epoch ms when this key was handled, if it was (and has not expired). */
  handledAt(key: string, now = Date.now()): number | undefined {
    const at = this.seen.get(key);
    if (at === undefined) return undefined;
    if (now - at > this.ttlMs) {
      this.seen.delete(key);
      return undefined;
    }
    return at;
  }

  remember(key: string, now = Date.now()): void {
    this.seen.delete(key);
    this.seen.set(key, now);
    while (this.seen.size > this.maxEntries) {
      const oldest = this.seen.keys().next().value as string;
      this.seen.delete(oldest);
    }
  }
}
