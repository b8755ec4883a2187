import type { Connection } from '../mysql/connect.js';

export interface WriterWatchOptions {
  /** Opens a connection to a configured host with the monitor's credentials. */
  open(host: string): Promise<Connection>;
  /** The established connection to `host` was lost: look now, not at the next interval. */
  onLost(host: string, reason: string): void;
  /**
   * Keep asking the idle connection (COM_PING) every `everyMs`; a ping unanswered for `stallMs`
   * means the server hangs (SIGSTOP, a stuck process: the socket stays open, nothing is closed)
   * and `onStalled` is called, at most once per `everyMs * 5` and never again before a ping is
   * answered. It decides nothing either: the woken cycle's checks count, as always.
   */
  ping?: { everyMs: number; stallMs: number; onStalled(host: string, reason: string): void };
}

interface Watched {
  host: string;
  connection?: Connection;
  opening?: Promise<void>;
  pinger?: NodeJS.Timeout;
  /** When the ping still unanswered was sent. */
  pingSentAt?: number;
  /** The stall of the current ping was reported. */
  stallReported?: boolean;
}

/**
 * One idle connection to the writer, so that a crash of its mysqld (killed, aborted, restarted:
 * the kernel closes the socket and the client hears it at once) wakes the monitor immediately
 * instead of at the next interval. It decides nothing: the woken cycle checks every host as
 * always, and the evidence rules apply. A server that hangs (stopped, stuck) or a host that
 * vanishes silently closes nothing; with `ping` the watch notices that its pings go unanswered
 * and wakes the monitor too, so the first failed check starts then, not up to an interval later.
 *
 * Only the loss of an established connection wakes; a failed connect does not, so a dead or
 * refusing writer never turns into a loop. Reconnecting happens when the next cycle calls
 * watch() again.
 */
export class WriterWatch {
  private current?: Watched;
  private closed = false;
  /** When a stall was last reported: a slow but live writer never turns into a loop of wakes. */
  private lastStallAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: WriterWatchOptions) {}

  /** Called after every cycle with the writer as the state names it (undefined: none). */
  watch(host: string | undefined): void {
    if (this.closed) return;
    if (this.current && this.current.host !== host) this.drop();
    if (!host) return;
    if (!this.current) this.current = { host };
    const current = this.current;
    if (current.connection || current.opening) return;
    current.opening = this.open(current).finally(() => {
      current.opening = undefined;
    });
  }

  /** The host being watched with an established connection, if any (for tests and status). */
  watching(): string | undefined {
    return this.current?.connection ? this.current.host : undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    const opening = this.current?.opening;
    this.drop();
    await opening?.catch(() => undefined);
  }

  private async open(entry: Watched): Promise<void> {
    let connection: Connection;
    try {
      connection = await this.options.open(entry.host);
    } catch {
      return; // the cycle's own check reports why; the next cycle tries again
    }
    if (this.closed || this.current !== entry) {
      connection.destroy();
      return;
    }
    entry.connection = connection;
    let reported = false;
    const lost = (reason: string) => {
      if (reported) return;
      reported = true;
      if (this.current === entry) entry.connection = undefined;
      this.stopPinging(entry);
      connection.destroy();
      if (!this.closed && this.current === entry) this.options.onLost(entry.host, reason);
    };
    connection.on('error', (error: Error) => lost(error.message));
    connection.on('end', () => lost('the server closed the connection'));
    this.startPinging(entry, connection);
  }

  private startPinging(entry: Watched, connection: Connection): void {
    const ping = this.options.ping;
    if (!ping) return;
    entry.pinger = setInterval(() => {
      if (this.closed || this.current !== entry || entry.connection !== connection) return;
      const now = Date.now();
      if (entry.pingSentAt === undefined) {
        const sentAt = now;
        entry.pingSentAt = sentAt;
        entry.stallReported = false;
        connection.ping().then(
          () => {
            if (entry.pingSentAt === sentAt) entry.pingSentAt = undefined;
          },
          () => undefined, // a lost connection is reported by its 'error'/'end' events
        );
        return;
      }
      const waited = now - entry.pingSentAt;
      if (waited < ping.stallMs || entry.stallReported) return;
      if (now - this.lastStallAt < ping.everyMs * 5) return;
      entry.stallReported = true;
      this.lastStallAt = now;
      ping.onStalled(entry.host, `no answer to a ping on the idle connection for ${waited} ms`);
    }, ping.everyMs);
    entry.pinger.unref();
  }

  private stopPinging(entry: Watched): void {
    if (entry.pinger) clearInterval(entry.pinger);
    entry.pinger = undefined;
    entry.pingSentAt = undefined;
  }

  private drop(): void {
    const connection = this.current?.connection;
    if (this.current) this.stopPinging(this.current);
    this.current = undefined;
    if (connection) {
      connection.removeAllListeners('error');
      connection.removeAllListeners('end');
      // destroy() on a socket the server already closed raises nothing; keep an error listener so
      // a late one never becomes an unhandled 'error' event.
      connection.on('error', () => undefined);
      connection.destroy();
    }
  }
}
