import { queryRows, type Connection } from '../mysql/connect.js';

const TS_FORMAT = "'%Y-%m-%d %H:%i:%s.%f'";
/** Enough for hours of one stamp a second; older stamps are dropped (the figure then errs low by their age at most). */
const MAX_STAMPS = 4000;

/**
 * Replica lag for the checksum's back-off, measured through the heartbeat table (the monitor's
 * technique), not Seconds_Behind_Master: that one is NULL while a replica's SQL thread is
 * stopped and jumps around with long transactions, so a run would keep pushing chunks onto a
 * replica that is minutes behind.
 *
 * The run stamps the writer's heartbeat row itself before each measurement and remembers when,
 * by its own clock; the row it found at the start (the daemon's heartbeat, when one runs) is the
 * first stamp. A replica's lag is the age of the oldest of those stamps it has not applied yet
 * (0 when it has the newest). That works with or without a heartbeat writer running (a CLI run
 * on a cluster without a manager), compares no two servers' clocks, and is never inflated by an
 * old row the replica has applied; it errs low by at most the time between two stamps.
 */
export class HeartbeatLag {
  private serverId?: number;
  private readonly stamps: Array<{ ts: string; at: number }> = [];

  constructor(
    private readonly writer: Connection,
    private readonly schema: string,
  ) {}

  /** Creates the heartbeat table if needed (as the heartbeat writer does) and learns the writer's server_id. */
  async prepare(): Promise<void> {
    const [row] = await queryRows<{ id: string | number }>(
      this.writer,
      'SELECT @@global.server_id AS id',
    );
    this.serverId = Number(row?.id);
    await this.writer.query(`CREATE DATABASE IF NOT EXISTS \`${this.schema}\``);
    await this.writer.query(
      `CREATE TABLE IF NOT EXISTS \`${this.schema}\`.heartbeat (server_id INT UNSIGNED NOT NULL PRIMARY KEY, ts DATETIME(6) NOT NULL) ENGINE=InnoDB`,
    );
    // The row as found (the daemon's heartbeat writer renews it every heartbeat.interval) is
    // the first stamp: its age, by the writer's own clock, is known now, so a replica that
    // stopped applying before the run started is seen as behind from the first measurement.
    const [found] = await queryRows<{ ts: string | null; age: string | number | null }>(
      this.writer,
      `SELECT DATE_FORMAT(ts, ${TS_FORMAT}) AS ts, TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) / 1000 AS age FROM \`${this.schema}\`.heartbeat WHERE server_id = ?`,
      [this.serverId],
    );
    if (found?.ts && found.age !== null)
      this.stamps.push({ ts: found.ts, at: Date.now() - Math.max(0, Number(found.age)) });
  }

  /**
   * Stamps the writer's row. Literal values only: the checksum's session is statement-based, and
   * @@server_id in the statement would be re-evaluated on every replica.
   */
  async stamp(): Promise<void> {
    if (this.serverId === undefined) throw new Error('HeartbeatLag.prepare() was not called');
    const at = Date.now();
    const [now] = await queryRows<{ ts: string }>(
      this.writer,
      `SELECT DATE_FORMAT(UTC_TIMESTAMP(6), ${TS_FORMAT}) AS ts`,
    );
    if (!now?.ts) throw new Error('the writer returned no UTC_TIMESTAMP');
    await this.writer.query(
      `REPLACE INTO \`${this.schema}\`.heartbeat (server_id, ts) VALUES (?, ?)`,
      [this.serverId, now.ts],
    );
    this.stamps.push({ ts: now.ts, at });
    if (this.stamps.length > MAX_STAMPS) this.stamps.shift();
  }

  /**
   * Seconds the replica is behind, as above; null when it cannot be asked (it is then not
   * compared at the end either, and says so).
   */
  async lagSeconds(replica: Connection): Promise<number | null> {
    let applied: string | null;
    try {
      const [row] = await queryRows<{ ts: string | null }>(
        replica,
        `SELECT DATE_FORMAT(MAX(ts), ${TS_FORMAT}) AS ts FROM \`${this.schema}\`.heartbeat WHERE server_id = ?`,
        [this.serverId],
      );
      applied = row?.ts ?? null;
    } catch (error) {
      // No heartbeat table yet: the replica has not applied even the run's CREATE TABLE.
      if ((error as { code?: string }).code !== 'ER_NO_SUCH_TABLE') return null;
      applied = null;
    }
    // Same format and the writer's clock on both sides: string order is time order.
    const oldestMissing = this.stamps.find((stamp) => applied === null || stamp.ts > applied);
    return oldestMissing ? Math.max(0, (Date.now() - oldestMissing.at) / 1000) : 0;
  }
}
