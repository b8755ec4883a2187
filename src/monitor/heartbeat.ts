import type { LoadedConfig } from '../config/load.js';
import { readSecret } from '../config/secrets.js';
import type { Logger } from '../log.js';
import { openConnection, type Connection } from '../mysql/connect.js';
import { flavorOf, type Flavor } from '../mysql/dialect.js';

/** The SIGNAL text of a beat refused because read_only was ON (see guardedBeat). */
const READ_ONLY_SIGNAL = 'switchyard heartbeat: read_only is ON';

/**
 * One beat in one statement (MariaDB's anonymous compound statement): the row is written only if
 * read_only is OFF when the statement runs, else it fails with READ_ONLY_SIGNAL and nothing is
 * written or logged. Half the round trips of a read followed by a write, and the gap in which a
 * fence could land between the read and the write shrinks from a round trip to the statement's
 * own execution.
 */
function guardedBeat(schema: string): string {
  return [
    'BEGIN NOT ATOMIC',
    '  IF @@global.read_only = 0 THEN',
    `    REPLACE INTO \`${schema}\`.heartbeat (server_id, ts) VALUES (@@server_id, UTC_TIMESTAMP(6));`,
    '  ELSE',
    `    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '${READ_ONLY_SIGNAL}';`,
    '  END IF;',
    'END',
  ].join('\n');
}

/**
 * pt-heartbeat's idea: the writer stamps a row with its own clock (microseconds) every
 * heartbeat.interval; each replica's lag is its own clock minus the newest stamp it has
 * applied, so lag is sub-second and works through chains. Server clocks are assumed in sync
 * (NTP), as pt-heartbeat assumes. The row is written only on the host named as writer and only
 * when that host reports read_only=OFF in the same session: the manager's account can bypass
 * read_only, and a heartbeat on the wrong host would be an errant transaction.
 */
export class HeartbeatWriter {
  private timer?: NodeJS.Timeout;
  private connection?: Connection;
  private connectedTo?: string;
  private flavor?: Flavor;
  private running?: Promise<void>;
  private prepared = new Set<string>();
  private lastProblem = '';

  constructor(private readonly options: { config: LoadedConfig; log: Logger }) {}

  start(getWriter: () => string | undefined): void {
    const tick = async () => {
      const writer = getWriter();
      if (!writer) return this.problem('no writer known: no heartbeat written');
      try {
        await this.beat(writer);
        this.lastProblem = '';
      } catch (error) {
        this.connection?.destroy();
        this.connection = undefined;
        this.problem(`heartbeat on ${writer} failed: ${(error as Error).message}`);
      }
    };
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = tick().finally(() => {
        this.running = undefined;
      });
    }, this.options.config.heartbeat.interval);
  }

  private problem(message: string): void {
    if (message !== this.lastProblem)
      this.options.log.warn({ event: 'heartbeat.skipped', reason: message }, message);
    this.lastProblem = message;
  }

  private async beat(writer: string): Promise<void> {
    const { config } = this.options;
    const host = config.hosts[writer];
    if (!host) throw new Error(`unknown host ${writer}`);
    if (this.connectedTo !== writer) {
      this.connection?.destroy();
      this.connection = undefined;
    }
    if (!this.connection) {
      this.connection = await openConnection({
        host: host.address,
        port: host.port,
        user: config.mysql.user,
        password: readSecret(
          { file: config.mysql.password_file, env: config.mysql.password_env },
          'mysql.password',
        ),
        connectTimeoutMs: config.monitor.connect_timeout,
      });
      this.connectedTo = writer;
      this.flavor = undefined;
    }
    const connection = this.connection;
    // Every query is bounded: a writer that went silent (no TCP reset) would otherwise hold this
    // tick, and every later one, until TCP gives up many minutes later, and the new writer would
    // get no heartbeat.
    const timeout = Math.max(1000, 2 * config.monitor.connect_timeout);
    const schema = config.heartbeat.schema;
    const guarded = async () => {
      try {
        await connection.query({ sql: guardedBeat(schema), timeout });
      } catch (error) {
        if ((error as Error).message.includes(READ_ONLY_SIGNAL))
          throw new Error(`${writer} is read-only: it is not (yet) the writer`, { cause: error });
        throw error;
      }
    };
    if (this.flavor === 'mariadb' && this.prepared.has(writer)) return guarded();
    const [rows] = await connection.query({
      sql: 'SELECT @@global.read_only AS ro, @@version AS version',
      timeout,
    });
    const row = (rows as Array<{ ro: number | string; version?: string }>)[0];
    this.flavor = flavorOf(String(row?.version ?? ''));
    if (Number(row?.ro) !== 0)
      throw new Error(`${writer} is read-only: it is not (yet) the writer`);
    if (!this.prepared.has(writer)) {
      await connection.query({ sql: `CREATE DATABASE IF NOT EXISTS \`${schema}\``, timeout });
      await connection.query({
        sql: `CREATE TABLE IF NOT EXISTS \`${schema}\`.heartbeat (server_id INT UNSIGNED NOT NULL PRIMARY KEY, ts DATETIME(6) NOT NULL) ENGINE=InnoDB`,
        timeout,
      });
      this.prepared.add(writer);
    }
    // On MariaDB the write re-checks read_only in its own statement, even on a connection's
    // first beat: a fence that landed since the read above gets nothing written.
    if (this.flavor === 'mariadb') return guarded();
    await connection.query({
      sql: `REPLACE INTO \`${schema}\`.heartbeat (server_id, ts) VALUES (@@server_id, UTC_TIMESTAMP(6))`,
      timeout,
    });
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    // Destroyed first: a beat waiting on a silent writer ends now instead of at its timeout.
    this.connection?.destroy();
    await this.running;
    this.connection?.destroy();
    this.connection = undefined;
  }
}
