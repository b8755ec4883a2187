import { queryRows, type Connection } from './connect.js';
import { killClientSessions, type KilledSession } from './sessions.js';
import { formatPosition, mergePositionsKeepingFirst } from './gtid.js';
import { readPositions } from './positions.js';

export interface ReadOnlyFenceOptions {
  /** Opens a new connection to the server being fenced (the fence may need two). */
  open(): Promise<Connection>;
  /** Accounts whose sessions are never killed (Switchyard's own). */
  protectedUsers: Set<string>;
  /**
   * How long `SET GLOBAL read_only=ON` may wait before the client sessions are killed under it.
   * It waits for running commits: under semi-sync, for acknowledgements that may never come.
   */
  killAfterMs: number;
  /** After read_only=ON took effect: time for commits already past their lock to finish. */
  graceMs: number;
  /** The whole fence, connecting included: past it the fence failed (nothing is proved). */
  deadlineMs: number;
  /**
   * Give up early when read_only still waits this long after the last client session it could
   * kill: what it waits for then is a session the fence spares (a replication thread committing
   * under semi-sync, whose acknowledgement may never come), and only stopping the server ends it.
   */
  stallMs?: number;
  /**
   * After read_only took effect, kill every remaining client session (default true). False when
   * the caller kills them as a step of its own, after a grace of its own.
   */
  killRemaining?: boolean;
  /**
   * Once read_only is proved, read the server's GTID position too (its binlog and applied
   * positions merged): final, since nobody is left who could write. A failover's new writer must
   * have it before it is promoted (DESIGN.md: never promote a host missing transactions it could
   * have had, and a server fenced alive could hand them over).
   */
  readPosition?: boolean;
  sleep?: (ms: number) => Promise<void>;
}

export interface ReadOnlyFenceResult {
  /** read_only as read back from the server after the kills: true is the only proof. */
  readOnly: boolean;
  killed: KilledSession[];
  /** Sessions killed while read_only=ON waited for them (semi-sync, long commits). */
  killedWhileWaiting: number;
  elapsedMs: number;
  /** With readPosition, when read_only was proved: the position read after it. */
  position?: string;
  /** With readPosition: why the position could not be read (the fence still counts). */
  positionError?: string;
}

export class FenceTimeoutError extends Error {}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Turns the semi-sync master side off when only replication threads wait for an acknowledgement.
 * While read_only=ON is pending no client statement can start or reach its commit, so the only
 * client sessions that can be waiting were there before the kills; if one is still listed (its
 * kill not through yet) nothing is released this round.
 */
async function releaseSemiSyncWaits(connection: Connection): Promise<boolean> {
  const [row] = await queryRows<{ enabled: string | number }>(
    connection,
    'SELECT @@global.rpl_semi_sync_master_enabled AS enabled',
  );
  if (Number(row?.enabled) !== 1) return false;
  const waiting = await queryRows<{ COMMAND: string }>(
    connection,
    "SELECT COMMAND FROM information_schema.PROCESSLIST WHERE STATE LIKE '%semi-sync ACK%'",
  );
  if (waiting.length === 0 || waiting.some((session) => !REPLICATION_APPLIERS.has(session.COMMAND)))
    return false;
  await connection.query('SET GLOBAL rpl_semi_sync_master_enabled=OFF');
  return true;
}

const REPLICATION_APPLIERS = new Set(['Slave_SQL', 'Slave_worker']);

/** What is still running on the server, for the message of a fence that stalled. */
async function blockers(connection: Connection, spareIds: ReadonlySet<number>): Promise<string> {
  const rows = await queryRows<{
    ID: string | number;
    USER: string;
    COMMAND: string;
    STATE: string;
  }>(
    connection,
    "SELECT ID, USER, COMMAND, STATE FROM information_schema.PROCESSLIST WHERE STATE <> '' AND ID <> CONNECTION_ID()",
  );
  return (
    rows
      .filter((row) => !spareIds.has(Number(row.ID)))
      .map((row) => `${row.USER} ${row.COMMAND} "${row.STATE}"`)
      .join('; ') || 'nothing visible'
  );
}

/** The fenced server's position; a failed read leaves the fence proved and says why. */
async function finalPosition(
  connection: Connection,
): Promise<{ position?: string; positionError?: string }> {
  try {
    const positions = await readPositions(connection);
    return {
      position: formatPosition(mergePositionsKeepingFirst(positions.binlog, positions.slave)),
    };
  } catch (error) {
    return { positionError: (error as Error).message };
  }
}

/**
 * `read_only=ON` that ends the sessions it would otherwise queue behind, then proof. MariaDB's
 * read_only waits for every commit in flight; a commit waiting for a semi-sync acknowledgement
 * waits up to rpl_semi_sync_master_timeout, and the fenced writer stays writable for that long.
 * A KILL of such a session ends its wait at once (its client gets an error, not an
 * acknowledgement), so if read_only has not taken effect within `killAfterMs`, client sessions
 * are killed from a second connection until it does. Afterwards every remaining client session is
 * killed and read_only is read back. Everything is bounded by `deadlineMs`: a server that does
 * not answer in time has not been fenced, and the caller must not say it was.
 */
export async function fenceReadOnly(options: ReadOnlyFenceOptions): Promise<ReadOnlyFenceResult> {
  const started = Date.now();
  const sleep = options.sleep ?? defaultSleep;
  const opened: Connection[] = [];
  let deadlineTimer: NodeJS.Timeout | undefined;
  let expired = false;
  const deadline = new Promise<never>((_resolve, reject) => {
    deadlineTimer = setTimeout(() => {
      expired = true;
      for (const connection of opened) connection.destroy();
      reject(
        new FenceTimeoutError(
          `no proof within ${options.deadlineMs} ms (read_only=ON and the read-back did not complete)`,
        ),
      );
    }, options.deadlineMs);
  });
  const open = async () => {
    const connection = await options.open();
    opened.push(connection);
    // A connect that completed after the deadline must not outlive the fence.
    if (expired) connection.destroy();
    return connection;
  };
  const work = async (): Promise<ReadOnlyFenceResult> => {
    const main = await open();
    const [self] = await queryRows<{ id: string | number }>(main, 'SELECT CONNECTION_ID() AS id');
    const spareIds = new Set([Number(self?.id)]);
    let settled = false;
    const setting = main.query('SET GLOBAL read_only=ON').finally(() => {
      settled = true;
    });
    // Observed, so a rejection while the kills run is not unhandled; awaited below.
    setting.catch(() => undefined);
    let killedWhileWaiting = 0;
    await Promise.race([setting.then(() => undefined), sleep(options.killAfterMs)]);
    let releasedSemiSync = false;
    let killer: Connection | undefined;
    if (!settled) {
      killer = await open();
      const waitingSince = Date.now();
      while (!settled) {
        const killed = await killClientSessions(killer, options.protectedUsers, spareIds);
        killedWhileWaiting += killed.length;
        // What still holds read_only back after the clients are gone: a replication thread whose
        // commit waits for a semi-sync acknowledgement (it may never come). New commits cannot
        // start while read_only waits, and the clients that were waiting are killed: turning the
        // master side off now acknowledges nobody, and lets read_only through.
        if (!releasedSemiSync) releasedSemiSync = await releaseSemiSyncWaits(killer);
        if (options.stallMs !== undefined && Date.now() - waitingSince >= options.stallMs)
          throw new FenceTimeoutError(
            `read_only=ON still waits ${Date.now() - waitingSince} ms after its sessions were killed: ${await blockers(killer, spareIds)}`,
          );
        if (!settled) await Promise.race([setting.then(() => undefined), sleep(50)]);
      }
    }
    await setting;
    // Back as configured: read_only now keeps clients out, so nothing waits on it but replication.
    if (releasedSemiSync && killer)
      await killer.query('SET GLOBAL rpl_semi_sync_master_enabled=ON');
    if (options.graceMs > 0) await sleep(options.graceMs);
    const killed =
      options.killRemaining === false
        ? []
        : await killClientSessions(main, options.protectedUsers, spareIds);
    const [row] = await queryRows<{ read_only: string | number }>(
      main,
      'SELECT @@global.read_only AS read_only',
    );
    const readOnly = Number(row?.read_only) === 1;
    const final = readOnly && options.readPosition ? await finalPosition(main) : {};
    return {
      readOnly,
      killed,
      killedWhileWaiting,
      elapsedMs: Date.now() - started,
      ...final,
    };
  };
  try {
    return await Promise.race([work(), deadline]);
  } finally {
    clearTimeout(deadlineTimer);
    for (const connection of opened) connection.destroy();
  }
}
