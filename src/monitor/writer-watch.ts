import type { Connection } from '../mysql/connect.js';

export interface WriterWatchOptions {
  /** Opens a connection to a configured host with the monitor's credentials. */
  open(host: string): Promise<Connection>;
  /** The established connection to `host` was lost: look now, not at the next interval. */
  onLost(host: string, reason: string): void;
}

/**
 * One idle connection to the writer, so that a crash of its mysqld (killed, aborted, restarted:
 * the kernel closes the socket and the client hears it at once) wakes the monitor immediately
 * instead of at the next interval. It decides nothing: the woken cycle checks every host as
 * always, and the evidence rules apply. A host that vanishes silently sends nothing, so that
 * case stays with the interval checks and the agents' probes.
 *
 * Only the loss of an established connection wakes; a failed connect does not, so a dead or
 * refusing writer never turns into a loop. Reconnecting happens when the next cycle calls
 * watch() again.
 */
export class WriterWatch {
  private current?: { host: string; connection?: Connection; opening?: Promise<void> };
  private closed = false;

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

  private async open(entry: { host: string; connection?: Connection }): Promise<void> {
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
      connection.destroy();
      if (!this.closed && this.current === entry) this.options.onLost(entry.host, reason);
    };
    connection.on('error', (error: Error) => lost(error.message));
    connection.on('end', () => lost('the server closed the connection'));
  }

  private drop(): void {
    const connection = this.current?.connection;
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
