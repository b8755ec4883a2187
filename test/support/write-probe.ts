import { openConnection, type Connection } from '../../src/mysql/connect.js';

export interface WriteProbeOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Table with (id BIGINT PRIMARY KEY, at BIGINT); created by the caller on the writer. */
  table: string;
  intervalMs?: number;
  connectTimeoutMs?: number;
}

export interface WriteRecord {
  id: number;
  sentAt: number;
  ackedAt?: number;
  error?: string;
}

/**
 * An application that writes once every `intervalMs` through one address (a VIP or a port), the
 * way a real client would: on error it drops the connection and reconnects on the next tick.
 * Every acknowledged id must exist afterwards; the gap between acknowledgements is the write
 * pause a failover or switchover caused.
 */
export class WriteProbe {
  readonly records: WriteRecord[] = [];
  private connection?: Connection;
  private timer?: NodeJS.Timeout;
  private nextId = 1;
  private busy = false;
  private stopped = false;
  private paused = false;

  constructor(private readonly options: WriteProbeOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs ?? 10);
  }

  private async tick(): Promise<void> {
    if (this.busy || this.stopped || this.paused) return;
    this.busy = true;
    const record: WriteRecord = { id: this.nextId++, sentAt: Date.now() };
    this.records.push(record);
    try {
      if (!this.connection) {
        this.connection = await openConnection({
          host: this.options.host,
          port: this.options.port,
          user: this.options.user,
          password: this.options.password,
          connectTimeoutMs: this.options.connectTimeoutMs ?? 500,
        });
      }
      await this.connection.query(
        { sql: `INSERT INTO ${this.options.table} (id, at) VALUES (?, ?)`, timeout: 1000 },
        [record.id, record.sentAt],
      );
      record.ackedAt = Date.now();
    } catch (error) {
      record.error = (error as Error).message;
      this.connection?.destroy();
      this.connection = undefined;
    } finally {
      this.busy = false;
    }
  }

  /** Holds writes (the timer keeps running) until resume(); waits for the write in flight. */
  async pause(): Promise<void> {
    this.paused = true;
    while (this.busy) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  resume(): void {
    this.paused = false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.busy) await new Promise((resolve) => setTimeout(resolve, 5));
    this.connection?.destroy();
  }

  acked(): WriteRecord[] {
    return this.records.filter((record) => record.ackedAt !== undefined);
  }

  /** Longest gap between consecutive acknowledgements after `since` (epoch ms). */
  longestPause(since = 0): { pauseMs: number; from?: number; to?: number } {
    const acked = this.acked().filter((record) => (record.ackedAt as number) >= since);
    let best = { pauseMs: 0 } as { pauseMs: number; from?: number; to?: number };
    for (let index = 1; index < acked.length; index++) {
      const gap = (acked[index]?.ackedAt as number) - (acked[index - 1]?.ackedAt as number);
      if (gap > best.pauseMs)
        best = { pauseMs: gap, from: acked[index - 1]?.ackedAt, to: acked[index]?.ackedAt };
    }
    return best;
  }

  /**
   * First acknowledgement of a write sent after `since`: after a silent cut, a write already in
   * flight may still be acknowledged by the old writer; one sent later can only reach the new one.
   */
  firstAckOfWriteSentAfter(since: number): number | undefined {
    const acked = this.records
      .filter((record) => record.sentAt > since && record.ackedAt !== undefined)
      .map((record) => record.ackedAt as number);
    return acked.length ? Math.min(...acked) : undefined;
  }

  /** First acknowledgement at or after `since`. */
  firstAckAfter(since: number): number | undefined {
    return this.acked().find((record) => (record.ackedAt as number) >= since)?.ackedAt;
  }

  /** Acknowledged ids that the given connection (to the surviving writer) cannot find. */
  async missingAcked(connection: Connection): Promise<number[]> {
    const [rows] = await connection.query(`SELECT id FROM ${this.options.table}`);
    const present = new Set((rows as Array<{ id: string | number }>).map((row) => Number(row.id)));
    return this.acked()
      .map((record) => record.id)
      .filter((id) => !present.has(id));
  }
}
