import {
  openConnection,
  withConnection,
  queryRows,
  sqlString,
  type Connection,
  type Endpoint,
} from '../mysql/connect.js';
import {
  contains,
  describeMissing,
  formatGtid,
  formatPosition,
  GtidParseError,
  mergePositions,
  missingFrom,
  parsePosition,
} from '../mysql/gtid.js';
import { fenceReadOnly } from '../mysql/fence.js';
import { readPositions } from '../mysql/positions.js';
import { moveToServablePosition } from '../mysql/start-position.js';
import { killClientSessions, type KilledSession } from '../mysql/sessions.js';
import type { StepRecorder } from './recorder.js';
import {
  ActionError,
  RefusedError,
  type FenceResult,
  type MysqlActuator,
  type PlannedStep,
} from './types.js';

export interface MysqlHostAddress {
  address: string;
  port: number;
}

export interface Credentials {
  user: string;
  /** Read when needed (not at start), so a rotated password file takes effect and dry-run never reads it. */
  password: () => string;
}

export interface MysqlActionsOptions {
  hosts: Record<string, MysqlHostAddress>;
  /** The account the actuator connects as; needs READ_ONLY ADMIN (to set read_only) and CONNECTION ADMIN (to KILL). */
  manager: Credentials;
  replication: Credentials;
  /** Further accounts whose sessions fencing never kills (Switchyard's own everyday user). */
  protectedUsers?: string[];
  recorder: StepRecorder;
  connectTimeoutMs: number;
  /** Time between read_only=ON and killing client sessions, so in-flight commits can finish. */
  fenceGraceMs: number;
  /** How long START SLAVE / a repoint may take before the threads must be running. */
  replicationStartTimeoutMs?: number;
  /** Upper bound on waiting for table locks when setting read_only (which takes a global lock). */
  lockWaitTimeoutSeconds?: number;
  /** mysql.tls with replication: true: repointed replicas connect with MASTER_SSL (CA path as on the replica host). */
  replicationTls?: { caFile: string; verifyServerCert: boolean };
}

/** Connections that belong to replication or the server itself; fencing leaves them alone. */
const ER_SPECIFIC_ACCESS_DENIED = 1227;
/**
 * The master sends a heartbeat event this often when idle, so a replica whose slave_net_timeout
 * was lowered does not mistake an idle master for a lost one. Failure detection itself does not
 * depend on it: the agents' probes see a silent loss whatever slave_net_timeout is.
 */
const HEARTBEAT_PERIOD_SECONDS = 1;
/** Longest an ordinary action (read_only, fence, STOP SLAVE) may take; waits get their own bound added. */
const ACTION_DEADLINE_MS = 15_000;
/**
 * START SLAVE IO_THREAD returns once the thread is created; it waits only behind another START or
 * STOP on the channel (a background IO stop towards a vanished semi-sync master: about 2 s).
 */
const IO_THREAD_START_DEADLINE_MS = 5_000;
/** read_only=ON waits for commits in flight; past this their sessions are killed under it. */
const READ_ONLY_KILL_AFTER_MS = 250;

/**
 * How long START SLAVE waits for the master to have everything the replica has before it moves
 * gtid_slave_pos there. Short: the engine waits on it (set-online), and a master that is merely a
 * moment behind catches up in far less; past it the channel starts from where it was.
 */
const MASTER_CATCH_UP_WAIT_MS = 5_000;
/**
 * How long a started IO thread may report an error reaching its master before the wait for it
 * ends. The thread tries again only every MASTER_CONNECT_RETRY (60 s unless set): waiting the
 * whole replicationStartTimeoutMs for it proved nothing more, and held the engine's lock, so a
 * new writer killed just after a switchover was failed over 15 s late.
 */
export const IO_ERROR_GRACE_MS = 2_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * MySQL/MariaDB actions over the manager's own credentials. Each checks its preconditions,
 * verifies its effect (read back, thread state) and is safe to repeat.
 */
export class MysqlActions implements MysqlActuator {
  private readonly recorder: StepRecorder;

  constructor(private readonly options: MysqlActionsOptions) {
    this.recorder = options.recorder;
  }

  private target(host: string): MysqlHostAddress {
    const target = this.options.hosts[host];
    if (!target) throw new ActionError(`unknown host "${host}"`);
    return target;
  }

  private endpoint(host: string): Endpoint {
    const target = this.target(host);
    const manager = this.options.manager;
    return {
      host: target.address,
      port: target.port,
      user: manager.user,
      password: manager.password(),
      connectTimeoutMs: this.options.connectTimeoutMs,
    };
  }

  /**
   * One connection for one action, bounded by `deadlineMs`: a host that goes silent mid-action (no
   * TCP reset) would otherwise hold the action, and the engine's lock, until TCP gives up.
   */
  private async withHost<T>(
    host: string,
    work: (connection: Connection) => Promise<T>,
    deadlineMs = ACTION_DEADLINE_MS,
  ): Promise<T> {
    const target = this.target(host);
    let timedOut = false;
    try {
      return await withConnection(this.endpoint(host), (connection) => {
        const timer = setTimeout(() => {
          timedOut = true;
          connection.destroy();
        }, deadlineMs);
        return work(connection).finally(() => clearTimeout(timer));
      });
    } catch (error) {
      if (timedOut)
        throw new ActionError(
          `${host}: no answer within ${deadlineMs} ms (connection dropped): ${(error as Error).message}`,
        );
      if (error instanceof ActionError) throw error;
      const hint =
        (error as { errno?: number }).errno === ER_SPECIFIC_ACCESS_DENIED
          ? ` (the actuator connects as "${this.options.manager.user}"; grant it READ_ONLY ADMIN and CONNECTION ADMIN, or set mysql.admin_user to an account that has them)`
          : '';
      throw new ActionError(
        `${host} (${target.address}:${target.port}): ${(error as Error).message}${hint}`,
      );
    }
  }

  async setReadOnly(host: string, on: boolean): Promise<void> {
    this.target(host);
    const value = on ? 'ON' : 'OFF';
    await this.recorder.step(
      {
        action: on ? 'mysql.read_only_on' : 'mysql.read_only_off',
        host,
        description: `SET GLOBAL read_only=${value}`,
      },
      undefined,
      () =>
        on
          ? this.readOnlyOn(host)
          : this.withHost(host, async (connection) => {
              await connection.query(
                `SET SESSION lock_wait_timeout=${Number(this.options.lockWaitTimeoutSeconds ?? 10)}`,
              );
              await connection.query(`SET GLOBAL read_only=${value}`);
              await this.expectReadOnly(host, connection, on, `after setting it ${value}`);
            }),
    );
  }

  private async expectReadOnly(
    host: string,
    connection: Connection,
    on: boolean,
    when: string,
  ): Promise<void> {
    const [row] = await queryRows<{ read_only: string | number }>(
      connection,
      'SELECT @@global.read_only AS read_only',
    );
    const actual = Number(row?.read_only) === 1;
    if (actual !== on)
      throw new ActionError(`${host}: read_only reads back as ${actual ? 'ON' : 'OFF'} ${when}`);
  }

  /**
   * read_only=ON that does not queue behind commits waiting for semi-sync acknowledgements: the
   * sessions it waits for more than READ_ONLY_KILL_AFTER_MS are killed (src/mysql/fence.ts).
   */
  private async readOnlyOn(host: string): Promise<void> {
    let result;
    try {
      result = await fenceReadOnly({
        open: () => openConnection(this.endpoint(host)),
        protectedUsers: this.sparedUsers(),
        killAfterMs: READ_ONLY_KILL_AFTER_MS,
        graceMs: 0,
        deadlineMs: ACTION_DEADLINE_MS,
        killRemaining: false,
      });
    } catch (error) {
      const target = this.target(host);
      throw new ActionError(
        `${host} (${target.address}:${target.port}): read_only=ON not proved: ${(error as Error).message}`,
      );
    }
    if (!result.readOnly)
      throw new ActionError(`${host}: read_only reads back as OFF after setting it ON`);
  }

  private sparedUsers(): Set<string> {
    return new Set([
      this.options.manager.user,
      this.options.replication.user,
      ...(this.options.protectedUsers ?? []),
    ]);
  }

  async fence(host: string): Promise<FenceResult> {
    const completed: PlannedStep[] = [];
    await this.setReadOnly(host, true);
    completed.push({ action: 'mysql.read_only_on', host, description: 'SET GLOBAL read_only=ON' });
    if (!this.recorder.dryRun && this.options.fenceGraceMs > 0)
      await sleep(this.options.fenceGraceMs);
    const spared = [...this.sparedUsers()];
    const step: PlannedStep = {
      action: 'mysql.kill_clients',
      host,
      description: `after ${this.options.fenceGraceMs} ms, KILL CONNECTION for every session except replication threads and users ${spared.map((user) => `"${user}"`).join(', ')}`,
    };
    try {
      const killed = await this.recorder.step(
        step,
        [] as KilledSession[],
        () =>
          this.withHost(host, async (connection) => {
            const killed = await killClientSessions(connection, new Set(spared));
            // The proof: read_only is still ON once nobody is left who could have written.
            await this.expectReadOnly(
              host,
              connection,
              true,
              'after the client sessions were killed',
            );
            return killed;
          }),
        (sessions) =>
          `killed ${sessions.length}: ${sessions.map((session) => `${session.id} ${session.user}@${session.host}`).join(', ') || 'none'}`,
      );
      return { readOnly: true, killedConnections: killed.length };
    } catch (error) {
      throw new ActionError(
        `fence ${host}: read_only is ON but killing client sessions failed: ${(error as Error).message}`,
        completed,
      );
    }
  }

  async waitForGtid(host: string, position: string, timeoutMs: number): Promise<boolean> {
    let target;
    try {
      target = parsePosition(position);
    } catch (error) {
      throw new ActionError(`waitForGtid ${host}: ${(error as GtidParseError).message}`);
    }
    const canonical = formatPosition(target);
    this.target(host);
    return this.recorder.step(
      {
        action: 'mysql.gtid_wait',
        host,
        description: `SELECT MASTER_GTID_WAIT('${canonical}', ${timeoutMs / 1000})`,
      },
      true,
      () =>
        this.withHost(
          host,
          async (connection) => {
            // A position already in this host's own binlog counts too (MASTER_GTID_WAIT only looks at the replication position).
            const positions = await readPositions(connection);
            let has;
            try {
              has = mergePositions(positions.binlog, positions.slave);
            } catch (error) {
              throw new ActionError(`${host}: ${(error as Error).message}`);
            }
            if (contains(has, target)) return true;
            const [waited] = await this.releasingSemiSync(
              host,
              'MASTER_GTID_WAIT',
              queryRows<{ result: number | string | null }>(
                connection,
                'SELECT MASTER_GTID_WAIT(?, ?) AS result',
                [canonical, timeoutMs / 1000],
              ),
            );
            if (waited?.result === null || waited?.result === undefined)
              throw new ActionError(`${host}: MASTER_GTID_WAIT returned NULL (invalid position?)`);
            return Number(waited.result) === 0;
          },
          timeoutMs + ACTION_DEADLINE_MS,
        ),
      (reached) =>
        reached ? `reached ${canonical}` : `timed out after ${timeoutMs} ms before ${canonical}`,
    );
  }

  /** The CHANGE MASTER options for replication over TLS, empty without mysql.tls.replication. */
  private masterSsl(): string {
    const tls = this.options.replicationTls;
    if (!tls) return '';
    return `, MASTER_SSL=1, MASTER_SSL_CA=${sqlString(tls.caFile)}, MASTER_SSL_VERIFY_SERVER_CERT=${tls.verifyServerCert ? 1 : 0}`;
  }

  async repoint(replica: string, newMaster: string): Promise<void> {
    if (replica === newMaster) throw new RefusedError(`cannot point ${replica} at itself`);
    const master = this.target(newMaster);
    this.target(replica);
    const replicationUser = this.options.replication.user;
    const step: PlannedStep = {
      action: 'mysql.repoint',
      host: replica,
      description:
        `check ${newMaster} has every transaction ${replica} has; STOP SLAVE; ` +
        `CHANGE MASTER TO MASTER_HOST='${master.address}', MASTER_PORT=${master.port}, MASTER_USER='${replicationUser}', MASTER_USE_GTID=slave_pos, MASTER_HEARTBEAT_PERIOD=${HEARTBEAT_PERIOD_SECONDS}${this.masterSsl()}; START SLAVE`,
    };
    if (this.recorder.dryRun) {
      await this.recorder.step(step, undefined, async () => undefined);
      return;
    }
    const replicaState = await this.withHost(replica, (connection) => readPositions(connection));
    const masterState = await this.withHost(newMaster, (connection) => readPositions(connection));
    if (replicaState.serverId === masterState.serverId) {
      const reason = `${replica} and ${newMaster} report the same server_id ${replicaState.serverId}: refusing to replicate a server from itself`;
      this.recorder.refused(step, reason);
      throw new RefusedError(reason);
    }
    if (!masterState.logBin) {
      const reason = `${newMaster} has no binary log (log_bin=OFF), so it cannot be a master`;
      this.recorder.refused(step, reason);
      throw new RefusedError(reason);
    }
    let replicaHas;
    try {
      replicaHas = mergePositions(replicaState.binlog, replicaState.slave);
    } catch (error) {
      const reason = `${replica}'s own binlog and replication positions diverged: ${(error as Error).message}`;
      this.recorder.refused(step, reason);
      throw new RefusedError(reason);
    }
    const missing = missingFrom(replicaHas, masterState.binlog);
    if (missing.length > 0) {
      const gtids = missing.map((range) => formatGtid(range.have)).join(',');
      const reason =
        `${newMaster} lacks transactions that ${replica} has (errant GTIDs ${gtids}; ${describeMissing(missing)}); ` +
        `${replica} has ${formatPosition(replicaHas) || '(nothing)'}, ${newMaster} has ${masterState.text.binlogPos || '(nothing)'}`;
      this.recorder.refused(step, reason);
      throw new RefusedError(reason);
    }
    const replication = this.options.replication;
    const timeoutMs = this.options.replicationStartTimeoutMs ?? 15_000;
    await this.recorder.step(
      step,
      undefined,
      () =>
        this.withHost(
          replica,
          async (connection) => {
            await connection.query('STOP SLAVE');
            // A former master's own writes are in its binlog but not in gtid_slave_pos; start after them,
            // not before (the new master has them, checked above), or they would be applied twice.
            const start = formatPosition(replicaHas);
            if (start !== formatPosition(replicaState.slave))
              await connection.query('SET GLOBAL gtid_slave_pos = ?', [start]);
            const password = replication.password();
            await connection
              .query(
                `CHANGE MASTER TO MASTER_HOST=${sqlString(master.address)}, MASTER_PORT=${Number(master.port)}, ` +
                  `MASTER_USER=${sqlString(replication.user)}, MASTER_PASSWORD=${sqlString(password)}, MASTER_USE_GTID=slave_pos, ` +
                  `MASTER_HEARTBEAT_PERIOD=${HEARTBEAT_PERIOD_SECONDS}${this.masterSsl()}`,
              )
              .catch((error: Error) => {
                // A parse error quotes the statement "near ...", password included: never let that reach a log or the journal.
                throw new Error(error.message.split(password).join('[redacted]'));
              });
            await connection.query('START SLAVE');
            await waitForThreads(connection, replica, timeoutMs);
          },
          timeoutMs + ACTION_DEADLINE_MS,
        ),
      () => `replicating from ${newMaster} (${master.address}:${master.port})`,
    );
  }

  async stopReplication(host: string, options: { ioInBackground?: boolean } = {}): Promise<void> {
    this.target(host);
    if (options.ioInBackground) {
      await this.recorder.step(
        {
          action: 'mysql.stop_slave',
          host,
          description:
            'STOP SLAVE SQL_THREAD now (a SQL thread stuck on a semi-sync acknowledgement is released), the IO thread in the background',
        },
        undefined,
        () =>
          this.withHost(host, async (connection) => {
            await this.stopReleasingSemiSync(host, connection, 'STOP SLAVE SQL_THREAD');
            const status = await slaveStatus(connection);
            if (status?.Slave_SQL_Running === 'Yes')
              throw new ActionError(
                `${host}: SQL thread still running after STOP SLAVE SQL_THREAD`,
              );
          }),
      );
      // Journalled by the recorder, before and after; a failure is reported there.
      this.stopIoThread(host).catch(() => undefined);
      return;
    }
    await this.recorder.step(
      {
        action: 'mysql.stop_slave',
        host,
        description:
          'STOP SLAVE (a SQL thread stuck on a semi-sync acknowledgement is released by turning rpl_semi_sync_master_enabled off for the moment)',
      },
      undefined,
      () =>
        this.withHost(host, async (connection) => {
          await this.stopReleasingSemiSync(host, connection, 'STOP SLAVE');
          const status = await slaveStatus(connection);
          if (status && (status.Slave_IO_Running === 'Yes' || status.Slave_SQL_Running === 'Yes')) {
            throw new ActionError(
              `${host}: replication threads still running after STOP SLAVE (IO ${status.Slave_IO_Running}, SQL ${status.Slave_SQL_Running})`,
            );
          }
        }),
    );
  }

  async stopIoThread(host: string): Promise<void> {
    this.target(host);
    await this.recorder.step(
      { action: 'mysql.stop_io_thread', host, description: 'STOP SLAVE IO_THREAD' },
      undefined,
      () =>
        this.withHost(host, async (connection) => {
          // A semi-sync replica's IO thread, when stopped, connects to its master to end its dump
          // thread, for up to min(rpl_semi_sync_slave_kill_conn_timeout, 2 s): with a vanished
          // master that is the whole wait. 1 s is the shortest (0 means no limit at all).
          const [row] = await queryRows<{ timeout: string | number | null }>(
            connection,
            'SELECT @@global.rpl_semi_sync_slave_kill_conn_timeout AS timeout',
          ).catch(() => [{ timeout: null }]);
          const previous = Number(row?.timeout);
          const shorten = Number.isInteger(previous) && previous > 1;
          if (shorten) await connection.query('SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout=1');
          try {
            await connection.query('STOP SLAVE IO_THREAD');
          } finally {
            if (shorten)
              await connection.query(
                `SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout=${Number(previous)}`,
              );
          }
          const status = await slaveStatus(connection);
          if (status?.Slave_IO_Running === 'Yes')
            throw new ActionError(`${host}: IO thread still running after STOP SLAVE IO_THREAD`);
        }),
    );
  }

  /**
   * Undoes stopIoThread: the channel, its position and its SQL thread are as they were, so only
   * the IO thread starts again. Not waited for until it reaches its master, unlike
   * startReplication: the master may be the dead writer of a refused failover, and a thread
   * that cannot connect says "Connecting" and retries by itself (MASTER_CONNECT_RETRY) until it
   * is back. Bounded by IO_THREAD_START_DEADLINE_MS: the engine waits on it.
   */
  startIoThread(host: string): Promise<void> {
    return this.startThreads(host, 'START SLAVE IO_THREAD');
  }

  /**
   * Undoes stopReplication (a refused failover's target): both threads start again on the
   * channel as it was, the IO thread not waited for until it reaches its master (see
   * startIoThread). Without it the host would no longer replicate from the writer that stays.
   */
  resumeReplication(host: string): Promise<void> {
    return this.startThreads(host, 'START SLAVE');
  }

  private async startThreads(
    host: string,
    statement: 'START SLAVE IO_THREAD' | 'START SLAVE',
  ): Promise<void> {
    this.target(host);
    const io = statement === 'START SLAVE IO_THREAD';
    await this.recorder.step(
      { action: io ? 'mysql.start_io_thread' : 'mysql.start_slave', host, description: statement },
      undefined,
      () =>
        this.withHost(
          host,
          async (connection) => {
            await connection.query(statement);
            const status = await slaveStatus(connection);
            if (!status)
              throw new ActionError(
                `${host}: no replication is configured (SHOW SLAVE STATUS is empty)`,
              );
            if (status.Slave_IO_Running === 'No')
              throw new ActionError(
                `${host}: IO thread not running after ${statement}${status.Last_IO_Error ? `: ${String(status.Last_IO_Error)}` : ''}`,
              );
            if (!io && status.Slave_SQL_Running !== 'Yes')
              throw new ActionError(
                `${host}: SQL thread not running after ${statement}${status.Last_SQL_Error ? `: ${String(status.Last_SQL_Error)}` : ''}`,
              );
          },
          IO_THREAD_START_DEADLINE_MS,
        ),
    );
  }

  /**
   * On a semi-sync master (a writer candidate with log_slave_updates), the SQL thread's commits
   * wait for a replica's acknowledgement too: with the old writer gone nobody acknowledges, and
   * applying the relay log or STOP SLAVE waits up to rpl_semi_sync_master_timeout per commit
   * (6.5 s and 10 s seen) before a failover can promote. When `work` has not finished within 250
   * ms and the SQL thread is waiting for an acknowledgement, the master side is turned off until
   * `work` is done (those are replicated transactions, not a client's), then on again.
   */
  private async releasingSemiSync<T>(host: string, what: string, work: Promise<T>): Promise<T> {
    work.catch(() => undefined);
    const done = await Promise.race([work.then(() => true), sleep(250).then(() => false)]);
    if (done) return work;
    return withConnection(this.endpoint(host), async (second) => {
      const [row] = await queryRows<{ enabled: string | number }>(
        second,
        'SELECT @@global.rpl_semi_sync_master_enabled AS enabled',
      );
      const stuck = await queryRows(
        second,
        "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_SQL' AND STATE LIKE '%semi-sync ACK%'",
      );
      if (Number(row?.enabled) !== 1 || stuck.length === 0) return work;
      await second.query('SET GLOBAL rpl_semi_sync_master_enabled=OFF');
      try {
        return await work;
      } finally {
        await second.query('SET GLOBAL rpl_semi_sync_master_enabled=ON');
      }
    }).catch((error: Error) => {
      throw error instanceof ActionError
        ? error
        : new ActionError(`${host}: ${what}: ${error.message}`);
    });
  }

  private stopReleasingSemiSync(
    host: string,
    connection: Connection,
    statement: 'STOP SLAVE' | 'STOP SLAVE SQL_THREAD',
  ): Promise<unknown> {
    return this.releasingSemiSync(host, statement, connection.query(statement));
  }

  /**
   * START SLAVE on the configured channel, from a position its master can serve (see
   * mysql/start-position.ts): a stale gtid_slave_pos, which a master rebuilt from a copy never
   * held, is moved to everything the host has once the master has it too. Otherwise the IO thread
   * would stop at once with 1236, for good.
   */
  async startReplication(host: string): Promise<void> {
    this.target(host);
    const timeoutMs = this.options.replicationStartTimeoutMs ?? 15_000;
    await this.recorder.step(
      {
        action: 'mysql.start_slave',
        host,
        description:
          'START SLAVE (from everything the host has when its master has it: gtid_slave_pos moved to gtid_binlog_pos merged with gtid_slave_pos, with MASTER_USE_GTID=slave_pos)',
      },
      '',
      () =>
        this.withHost(
          host,
          async (connection) => {
            const status = await slaveStatus(connection);
            if (!status)
              throw new ActionError(
                `${host}: no replication is configured (SHOW SLAVE STATUS is empty)`,
              );
            const note = await this.startFromServablePosition(connection, host, status);
            await connection.query('START SLAVE');
            await waitForThreads(connection, host, timeoutMs);
            return note;
          },
          MASTER_CATCH_UP_WAIT_MS + timeoutMs + ACTION_DEADLINE_MS,
        ),
      (note) => note || 'replicating',
    );
  }

  /** The configured host whose address and port a replication channel names, if any. */
  private hostAt(address: unknown, port: unknown): string | undefined {
    return Object.entries(this.options.hosts).find(
      ([, entry]) => entry.address === String(address) && entry.port === Number(port),
    )?.[0];
  }

  /**
   * Moves the channel's gtid_slave_pos to a position its master can serve, waiting up to
   * MASTER_CATCH_UP_WAIT_MS for the master to have it. Returns what was done, for the journal ('' if nothing).
   * A master that is not a configured host, or a channel with MASTER_USE_GTID other than
   * slave_pos, is left as it is.
   */
  private async startFromServablePosition(
    connection: Connection,
    host: string,
    status: SlaveStatusRow,
  ): Promise<string> {
    if (String(status.Using_Gtid).toLowerCase() !== 'slave_pos') return '';
    const master = this.hostAt(status.Master_Host, status.Master_Port);
    if (!master || master === host) return '';
    let decision;
    try {
      decision = await moveToServablePosition(
        connection,
        () => this.withHost(master, async (other) => (await readPositions(other)).text.binlogPos),
        { deadline: Date.now() + MASTER_CATCH_UP_WAIT_MS, pollMs: 250 },
      );
    } catch (error) {
      return `could not start from a position ${master} surely holds (${(error as Error).message}): started from gtid_slave_pos as it was`;
    }
    if (decision.kind === 'keep') return `from ${decision.start || '(empty)'}`;
    if (decision.kind === 'move')
      return `from ${decision.start}, which ${master}'s binlog holds (gtid_slave_pos moved from ${decision.from || '(empty)'})`;
    return `${master} does not have ${decision.wanted} (all ${host} has) after ${MASTER_CATCH_UP_WAIT_MS} ms: started from gtid_slave_pos as it was`;
  }
}

type SlaveStatusRow = Record<string, string | number | null>;

async function slaveStatus(connection: Connection): Promise<SlaveStatusRow | undefined> {
  const [row] = await queryRows<SlaveStatusRow>(connection, 'SHOW SLAVE STATUS');
  return row;
}

/** Both threads must run; an IO thread stuck in "Connecting" with an error is a failure, reported with the error. */
async function waitForThreads(
  connection: Connection,
  host: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  let ioFailingSince: number | undefined;
  for (let attempt = 0; ; attempt++) {
    const status = await slaveStatus(connection);
    if (!status) throw new ActionError(`${host}: no replication configured after CHANGE MASTER`);
    if (status.Slave_IO_Running === 'Yes' && status.Slave_SQL_Running === 'Yes') return;
    last = `IO ${String(status.Slave_IO_Running)}, SQL ${String(status.Slave_SQL_Running)}${status.Last_IO_Error ? `, IO error: ${String(status.Last_IO_Error)}` : ''}${status.Last_SQL_Error ? `, SQL error: ${String(status.Last_SQL_Error)}` : ''}`;
    if (status.Slave_SQL_Running === 'No' && status.Last_SQL_Error) break;
    if (status.Slave_IO_Running !== 'Yes' && status.Last_IO_Error) {
      ioFailingSince ??= Date.now();
      if (Date.now() - ioFailingSince >= IO_ERROR_GRACE_MS) {
        last += ` for ${IO_ERROR_GRACE_MS} ms (the channel is set; its IO thread tries again every ${String(status.Connect_Retry ?? '?')} s by itself)`;
        break;
      }
    } else ioFailingSince = undefined;
    if (Date.now() > deadline) break;
    // The IO thread usually connects within milliseconds: a failover's catch-up waits on this,
    // so the first looks come quickly (5, 10, 20, 40, 80 ms), then every 100 ms.
    await sleep(Math.min(100, 5 * 2 ** attempt));
  }
  throw new ActionError(`${host}: replication is not running: ${last}`);
}
