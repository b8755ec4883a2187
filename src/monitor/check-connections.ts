import type { Connection } from '../mysql/connect.js';

/**
 * A fresh login at least this often per host, even while the kept connection answers: a login
 * that stopped working (a password rotated, max_connections reached, an account locked) must show
 * in the checks within this, not only once the kept connection breaks.
 */
export const FRESH_LOGIN_EVERY_MS = 30_000;

interface Kept {
  connection: Connection;
  openedAt: number;
  /** Set by the connection's 'error' or 'end' while it sat idle between checks. */
  broken?: string;
}

/**
 * The monitor's check connections, kept between cycles, one per host. A login per host per check
 * was most of what a check cost, on both sides: with a hundred clusters in one process the
 * connects, TLS or password handshakes and closes kept the manager's event loop and the servers
 * busy (bench/fleet.ts). A check takes its host's connection out while it runs (two checks never
 * share one) and gives it back only when every query of the check succeeded; any failure
 * destroys it, and the next check logs in afresh, so a host that died or hung is checked exactly
 * as with a new connection.
 */
export class CheckConnections {
  private readonly kept = new Map<string, Kept>();
  /** When each connection was first given back, near its login (the check's few queries after). */
  private readonly born = new WeakMap<Connection, number>();
  private closed = false;

  constructor(private readonly now: () => number = Date.now) {}

  /** The host's kept connection if it is still usable and young enough; the caller owns it now. */
  take(host: string): Connection | undefined {
    const entry = this.kept.get(host);
    if (!entry) return undefined;
    this.kept.delete(host);
    entry.connection.removeAllListeners('error');
    entry.connection.removeAllListeners('end');
    if (entry.broken !== undefined || this.now() - entry.openedAt >= FRESH_LOGIN_EVERY_MS) {
      entry.connection.destroy();
      return undefined;
    }
    return entry.connection;
  }

  /** Keeps a connection whose check succeeded, for the host's next check. */
  give(host: string, connection: Connection): void {
    if (this.closed) {
      connection.destroy();
      return;
    }
    const previous = this.kept.get(host)?.connection;
    if (previous !== connection) previous?.destroy();
    const openedAt = this.born.get(connection) ?? this.now();
    this.born.set(connection, openedAt);
    const entry: Kept = { connection, openedAt };
    // An idle connection the server closes emits 'error' (or 'end'): unhandled, it would end
    // the process. Noted here; the next take() destroys it.
    connection.on('error', (error: Error) => {
      entry.broken = error.message;
    });
    connection.on('end', () => {
      entry.broken = 'closed by the server';
    });
    this.kept.set(host, entry);
  }

  /** Hosts with a kept connection (tests). */
  hosts(): string[] {
    return [...this.kept.keys()];
  }

  close(): void {
    this.closed = true;
    for (const entry of this.kept.values()) entry.connection.destroy();
    this.kept.clear();
  }
}
