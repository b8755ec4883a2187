import { randomUUID } from 'node:crypto';
import cron from 'node-cron';
import type { LoadedConfig } from '../config/load.js';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Journal } from '../journal/journal.js';
import { silentLogger, type Logger } from '../log.js';
import { queryRows, type Connection } from '../mysql/connect.js';
import { missingFrom } from '../mysql/gtid.js';
import { readPositions } from '../mysql/positions.js';
import { connectManager, discoverWriter } from './hosts.js';
import { chunkerFor } from './chunker.js';
import { HeartbeatLag } from './lag.js';
import { ReplicaReads, type ChunkSum } from './replica-reads.js';
import {
  checksumTableDdl,
  chunkChecksumSql,
  chunkSelectSql,
  type ChunkSpec,
  diffQuerySql,
  literal,
  masterResultSql,
  nextChunkSize,
  qualified,
} from './sql.js';
import { estimateRows, NO_KEY_REASON, planTables, type TablePlan } from './tables.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface ChecksumDeps {
  /** The writer as the daemon's state has it; without it the single writable host is used. */
  writer?: string;
  metrics?: SwitchyardMetrics;
  logger?: Logger;
  journal?: Journal;
  /** Overrides checksum.tables (CLI --tables). */
  tables?: string[];
  /** Defaults to the manager account from the config. */
  connect?: (host: string) => Promise<Connection>;
  /** How long a replica may take to reach a position of the writer's: each first-pass chunk's, and the re-check's (default 120 s). */
  replicaWaitTimeoutMs?: number;
  /** Give up when replicas stay lagged beyond checksum.max_lag this long (default 10 min). */
  maxBackoffMs?: number;
  onProgress?: (event: { table: string; chunk: number; rows: number }) => void;
  /** Once, before the first chunk: the tables to check with InnoDB's row estimates (for progress and ETA). */
  onPlan?: (tables: Array<{ table: string; estimatedRows: number }>) => void;
  /** After each table, checked, skipped or failed. */
  onTableDone?: (outcome: TableOutcome) => void;
}

export interface TableOutcome {
  table: string;
  status: 'checked' | 'skipped' | 'failed';
  chunks: number;
  rows: number;
  /**
   * Chunks that differed in the first pass (plain reads on every host) and were checked again
   * the exact way; only what that finds is reported. Absent when none.
   */
  rechecked?: number;
  reason?: string;
}

export interface HostOutcome {
  host: string;
  status: 'checked' | 'unreachable' | 'failed';
  reason?: string;
  /** "db.table" -> differing chunks, for every checked table (0 when clean). */
  diffs: Record<string, number>;
}

export interface ChecksumReport {
  writer: string;
  startedAt: string;
  finishedAt: string;
  tables: TableOutcome[];
  hosts: HostOutcome[];
  /** Total differing chunks over all replicas and tables. */
  differences: number;
  /** True when every replica and table could be compared (nothing failed, unreachable or skipped). */
  complete: boolean;
}

const LOCK_ERRORS = new Set(['ER_LOCK_WAIT_TIMEOUT', 'ER_LOCK_DEADLOCK']);
const CHUNK_ATTEMPTS = 3;
const INITIAL_CHUNK_ROWS = 1000;

interface Replica {
  host: string;
  connection?: Connection;
  outcome: HostOutcome;
}

/** Opens the writer session the way the re-check needs it: statement-based, quick to give up on locks. */
async function prepareWriterSession(connection: Connection): Promise<void> {
  // One round trip: statement-based binlog (every replica re-executes a re-checked chunk over its
  // own rows); a chunk that would wait for an application's row lock gives up after 1 s instead of
  // queueing behind it (and making the application queue behind the chunk).
  await connection.query(
    "SET SESSION binlog_format = 'STATEMENT', SESSION innodb_lock_wait_timeout = 1, SESSION lock_wait_timeout = 2, SESSION autocommit = 1",
  );
  await connection.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
}

export async function runChecksum(
  config: LoadedConfig,
  deps: ChecksumDeps = {},
): Promise<ChecksumReport> {
  const log = deps.logger ?? silentLogger;
  const settings = config.checksum;
  const connect = deps.connect ?? connectManager(config);
  const startedAt = new Date();
  // Every host's connection is opened at once (and the discovery's are kept), not one after the
  // other: on a fleet the connects were a visible share of a short run.
  const opened = new Map<string, Connection>();
  const openAll = async (hosts: string[]) =>
    Promise.all(
      hosts.map(async (host) => {
        try {
          opened.set(host, await connect(host));
          return undefined;
        } catch (error) {
          return { host, error: error as Error };
        }
      }),
    );
  let writer: string;
  let failedConnects: Array<{ host: string; error: Error } | undefined>;
  try {
    if (deps.writer) {
      writer = deps.writer;
      failedConnects = await openAll(Object.keys(config.hosts));
    } else {
      writer = await discoverWriter(config, connect, opened);
      failedConnects = await openAll(Object.keys(config.hosts).filter((host) => !opened.has(host)));
    }
  } catch (error) {
    for (const connection of opened.values()) connection.destroy();
    throw error;
  }
  const action = randomUUID();
  deps.journal?.append({
    phase: 'before',
    event: 'checksum.run',
    action,
    host: writer,
    inputs: { tables: deps.tables ?? settings.tables ?? 'all' },
  });
  log.info({ event: 'checksum.started', writer }, 'consistency check started');

  const writerFailure = failedConnects.find((failure) => failure?.host === writer);
  const replicas: Replica[] = [];
  const writerConnection = opened.get(writer);
  try {
    if (!writerConnection)
      throw writerFailure?.error ?? new Error(`could not connect to the writer ${writer}`);
    opened.delete(writer);
    for (const host of Object.keys(config.hosts)
      .filter((name) => name !== writer)
      .sort()) {
      const connection = opened.get(host);
      opened.delete(host);
      const failure = failedConnects.find((entry) => entry?.host === host);
      if (connection) {
        replicas.push({ host, connection, outcome: { host, status: 'checked', diffs: {} } });
      } else {
        const reason = failure?.error.message ?? 'not connected';
        replicas.push({ host, outcome: { host, status: 'unreachable', reason, diffs: {} } });
        log.warn(
          { event: 'checksum.replica_unreachable', host, error: reason },
          'replica unreachable; it will not be compared',
        );
      }
    }
    await prepareWriterSession(writerConnection);
    const [readOnly] = await queryRows<{ ro: string | number }>(
      writerConnection,
      'SELECT @@global.read_only AS ro',
    );
    if (Number(readOnly?.ro) !== 0)
      throw new Error(`${writer} is read_only; the checksum must run on the writer`);
    for (const statement of checksumTableDdl(settings.schema))
      await writerConnection.query(statement);
    const heartbeat = new HeartbeatLag(writerConnection, config.heartbeat.schema);
    await heartbeat.prepare();
    // Every host renders values alike: the writer's sql_mode, timestamps in UTC.
    const [mode] = await queryRows<{ mode: string }>(
      writerConnection,
      'SELECT @@session.sql_mode AS mode',
    );
    const sameRendering = (connection: Connection) =>
      connection.query("SET SESSION time_zone = '+00:00', SESSION sql_mode = ?", [
        String(mode?.mode ?? ''),
      ]);
    await sameRendering(writerConnection);
    const waitTimeoutMs = deps.replicaWaitTimeoutMs ?? 120_000;
    const readers: ReplicaReads[] = [];
    await Promise.all(
      replicas.map(async (replica) => {
        if (!replica.connection) return;
        try {
          await sameRendering(replica.connection);
          readers.push(new ReplicaReads(replica.host, replica.connection, waitTimeoutMs));
        } catch (error) {
          replica.outcome = failedOutcome(replica.host, (error as Error).message);
        }
      }),
    );

    const plans = await planTables(writerConnection, {
      excludeSchemas: [settings.schema, config.heartbeat.schema],
      filters: deps.tables ?? settings.tables,
    });
    if (deps.onPlan) {
      const estimates = await estimateRows(writerConnection, plans);
      deps.onPlan(
        plans.map((plan) => ({
          table: `${plan.db}.${plan.table}`,
          estimatedRows: plan.key ? (estimates.get(`${plan.db}.${plan.table}`) ?? 0) : 0,
        })),
      );
    }
    const tables: TableOutcome[] = [];
    /** "db.table" -> chunk -> the writer's figures and the chunk, from the first pass. */
    const writerSums = new Map<string, Map<number, WriterChunk>>();
    let lastLagCheck = 0;
    const waitForLag = async () => {
      if (Date.now() - lastLagCheck < 1000) return;
      lastLagCheck = Date.now();
      const giveUpAt = Date.now() + (deps.maxBackoffMs ?? 600_000);
      for (;;) {
        await heartbeat.stamp();
        const lagging: Array<{ host: string; lag: number }> = [];
        // Every replica asked at once, not one after the other.
        const lags = await Promise.all(
          replicas.map((replica) =>
            replica.connection ? heartbeat.lagSeconds(replica.connection) : Promise.resolve(null),
          ),
        );
        replicas.forEach((replica, index) => {
          const lag = lags[index] ?? null;
          if (lag !== null && lag * 1000 > settings.max_lag)
            lagging.push({ host: replica.host, lag });
        });
        if (lagging.length === 0) return;
        if (Date.now() > giveUpAt)
          throw new Error(
            `replicas stayed lagged beyond ${settings.max_lag} ms: ${lagging.map((entry) => `${entry.host} ${entry.lag.toFixed(1)}s`).join(', ')}`,
          );
        log.info(
          { event: 'checksum.backoff', lagging },
          'replicas lag beyond checksum.max_lag; pausing',
        );
        await sleep(1000);
      }
    };

    for (const plan of plans) {
      const name = `${plan.db}.${plan.table}`;
      if (!plan.key) {
        tables.push({ table: name, status: 'skipped', chunks: 0, rows: 0, reason: NO_KEY_REASON });
        log.warn({ event: 'checksum.table_skipped', table: name }, NO_KEY_REASON);
      } else {
        try {
          const checked = await checksumTable(
            writerConnection,
            readers,
            settings,
            plan,
            waitForLag,
            deps.onProgress,
          );
          tables.push(checked.outcome);
          writerSums.set(checked.outcome.table, checked.chunks);
        } catch (error) {
          tables.push({
            table: name,
            status: 'failed',
            chunks: 0,
            rows: 0,
            reason: (error as Error).message,
          });
          log.error(
            { event: 'checksum.table_failed', table: name, error: (error as Error).message },
            'table checksum failed',
          );
        }
      }
      deps.onTableDone?.(tables[tables.length - 1] as TableOutcome);
    }

    // The first pass ends when every replica has read every chunk the writer read.
    await Promise.all(readers.map((reader) => reader.done()));
    const checkedTables = () =>
      tables.filter((table) => table.status === 'checked').map((table) => table.table);
    const differing = differingChunks(readers, writerSums, checkedTables());
    await recheck(writerConnection, settings.schema, differing, tables, log);
    // A table whose re-check failed is reported failed, not compared.
    const checked = checkedTables();
    // Every re-check statement is in the writer's binlog up to here; a replica that has applied
    // this position has re-computed the chunks over its own data.
    const writerPosition = (await readPositions(writerConnection)).text.binlogPos;
    await Promise.all(
      replicas.map((replica) => {
        const reader = readers.find((entry) => entry.host === replica.host);
        if (!reader) return Promise.resolve();
        if (reader.failure) {
          replica.outcome = failedOutcome(replica.host, reader.failure);
          return Promise.resolve();
        }
        return compareReplica(replica, writerPosition, checked, settings.schema, waitTimeoutMs);
      }),
    );

    const finishedAt = new Date();
    const hosts = replicas.map((replica) => replica.outcome);
    const differences = hosts.reduce(
      (sum, host) => sum + Object.values(host.diffs).reduce((a, b) => a + b, 0),
      0,
    );
    if (deps.metrics) {
      // The series are exactly the (replica, table) pairs this run compared: a replica that was
      // unreachable or failed, the writer, and tables not checked lose theirs rather than keep
      // exporting an old figure as if it were current (docs/consistency.md, "Metrics").
      deps.metrics.checksumDiffChunks.reset();
      for (const host of hosts) {
        for (const [table, chunks] of Object.entries(host.diffs))
          deps.metrics.checksumDiffChunks.set({ host: host.host, table }, chunks);
      }
      deps.metrics.checksumLastRun.set(finishedAt.getTime() / 1000);
    }
    const complete =
      tables.every((table) => table.status === 'checked') &&
      hosts.every((host) => host.status === 'checked');
    const report: ChecksumReport = {
      writer,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      tables,
      hosts,
      differences,
      complete,
    };
    deps.journal?.append({
      phase: 'after',
      event: 'checksum.run',
      action,
      host: writer,
      outcome: 'ok',
      detail: `${differences} differing chunks`,
      inputs: { complete },
    });
    log.info(
      {
        event: 'checksum.finished',
        writer,
        differences,
        complete,
        seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
      },
      'consistency check finished',
    );
    return report;
  } catch (error) {
    deps.journal?.append({
      phase: 'after',
      event: 'checksum.run',
      action,
      host: writer,
      outcome: 'failed',
      detail: (error as Error).message,
    });
    throw error;
  } finally {
    writerConnection?.destroy();
    for (const connection of opened.values()) connection.destroy();
    for (const replica of replicas) replica.connection?.destroy();
  }
}

interface WriterChunk {
  spec: ChunkSpec;
  sums: ChunkSum;
}

/**
 * The first pass over one table: the writer reads each chunk's checksum (a consistent read, no
 * row lock, nothing written), reads its binlog position, and hands both to every replica, which
 * reads the same chunk once it has applied that position, while the writer goes on.
 */
async function checksumTable(
  connection: Connection,
  readers: ReplicaReads[],
  settings: LoadedConfig['checksum'],
  plan: TablePlan,
  waitForLag: () => Promise<void>,
  onProgress: ChecksumDeps['onProgress'],
): Promise<{ outcome: TableOutcome; chunks: Map<number, WriterChunk> }> {
  const key = plan.key as NonNullable<TablePlan['key']>;
  const name = `${plan.db}.${plan.table}`;
  // Results of an earlier run (possibly with more chunks) must not count again.
  await connection.query(
    `DELETE FROM ${qualified(settings.schema, 'checksums')} WHERE db = ${literal(plan.db)} AND tbl = ${literal(plan.table)}`,
  );
  const chunks = new Map<number, WriterChunk>();
  let size = INITIAL_CHUNK_ROWS;
  let lower: unknown[] | undefined;
  let chunk = 0;
  let rows = 0;
  const chunker = chunkerFor(connection, plan);
  for (;;) {
    await waitForLag();
    const upper = await chunker.next(size);
    chunk += 1;
    const spec: ChunkSpec = {
      db: plan.db,
      table: plan.table,
      chunk,
      key,
      columns: plan.columns,
      lower,
      upper,
    };
    const statement = chunkSelectSql(spec);
    const started = process.hrtime.bigint();
    let result: { crc: unknown; cnt: unknown } | undefined;
    try {
      [result] = await queryRows<{ crc: unknown; cnt: unknown }>(connection, statement);
    } catch (error) {
      throw new Error(`chunk ${chunk} of ${name}: ${(error as Error).message}`, { cause: error });
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // Read after the chunk: it covers everything the chunk's read saw.
    const position = (await readPositions(connection)).text.binlogPos;
    const sums: ChunkSum = { crc: String(result?.crc), count: Number(result?.cnt) };
    chunks.set(chunk, { spec, sums });
    for (const reader of readers) reader.read(name, chunk, position, statement);
    chunker.observe(sums.count);
    rows += sums.count;
    onProgress?.({ table: name, chunk, rows });
    if (upper === undefined) break;
    lower = upper;
    size = nextChunkSize(size, sums.count, seconds, settings.chunk_time / 1000);
  }
  return { outcome: { table: name, status: 'checked', chunks: chunk, rows }, chunks };
}

/**
 * The chunks whose first-pass figures differ on at least one replica. Writes between the
 * writer's read and a replica's (the replica reads at its own later position) make a chunk differ
 * too, so each of these is checked again the exact way before anything is reported.
 */
function differingChunks(
  readers: ReplicaReads[],
  writerSums: Map<string, Map<number, WriterChunk>>,
  tables: string[],
): WriterChunk[] {
  const differing = new Map<string, WriterChunk>();
  for (const table of tables) {
    for (const [chunk, writerChunk] of writerSums.get(table) ?? []) {
      for (const reader of readers) {
        if (reader.failure) continue;
        const theirs = reader.sums.get(table)?.get(chunk);
        if (theirs?.crc !== writerChunk.sums.crc || theirs.count !== writerChunk.sums.count)
          differing.set(`${table}\u0000${chunk}`, writerChunk);
      }
    }
  }
  return [...differing.values()];
}

/**
 * The exact check, chunk by chunk (pt-table-checksum's way): on the writer, statement-based,
 * `REPLACE INTO checksums ... SELECT` under shared row locks, so no row of the chunk changes
 * between the read and the commit that puts the statement into the binlog, and every replica
 * re-executes it over its own rows at that same point; then the writer's figures as literals
 * into master_crc/master_cnt. Only a difference this finds is reported.
 */
async function recheck(
  connection: Connection,
  schema: string,
  chunks: WriterChunk[],
  tables: TableOutcome[],
  log: Logger,
): Promise<void> {
  for (const { spec } of chunks) {
    const name = `${spec.db}.${spec.table}`;
    const table = tables.find((entry) => entry.table === name);
    if (!table) continue;
    table.rechecked = (table.rechecked ?? 0) + 1;
    try {
      const started = process.hrtime.bigint();
      for (let attempt = 1; ; attempt++) {
        try {
          await connection.query(chunkChecksumSql(schema, spec));
          break;
        } catch (error) {
          const code = (error as { code?: string }).code ?? '';
          if (!LOCK_ERRORS.has(code) || attempt >= CHUNK_ATTEMPTS) throw error;
          await sleep(250 * attempt);
        }
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const [result] = await queryRows<{ crc: string; cnt: string | number }>(
        connection,
        `SELECT this_crc AS crc, this_cnt AS cnt FROM ${qualified(schema, 'checksums')} WHERE db = ? AND tbl = ? AND chunk = ?`,
        [spec.db, spec.table, spec.chunk],
      );
      if (!result) throw new Error(`result row missing from ${schema}.checksums`);
      await connection.query(
        masterResultSql(
          schema,
          spec.db,
          spec.table,
          spec.chunk,
          result.crc,
          Number(result.cnt),
          seconds,
        ),
      );
    } catch (error) {
      const reason = `re-check of chunk ${spec.chunk} of ${name}: ${(error as Error).message}`;
      Object.assign(table, { status: 'failed', reason });
      log.error({ event: 'checksum.table_failed', table: name, error: reason }, reason);
    }
  }
}

/** A replica that could not be compared: its status says why, and it has no figures. */
function failedOutcome(host: string, reason: string): HostOutcome {
  return { host, status: 'failed', reason, diffs: {} };
}

async function compareReplica(
  replica: Replica,
  writerPosition: string,
  tables: string[],
  schema: string,
  timeoutMs: number,
): Promise<void> {
  const connection = replica.connection;
  if (!connection) return;
  try {
    // gtid_current_pos covers both what the host replicated and what it wrote itself, so a former
    // writer whose own domain is in the writer's position still counts as caught up.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const positions = await readPositions(connection);
      if (missingFrom(writerPosition, positions.current).length === 0) break;
      if (Date.now() > deadline)
        throw new Error(
          `did not apply the writer's position ${writerPosition} within ${timeoutMs} ms (at ${positions.text.currentPos}); is replication running?`,
        );
      // A short poll: the run ends as soon as the slowest replica has applied the last chunk.
      await sleep(10);
    }
    const diffs: Record<string, number> = Object.fromEntries(tables.map((table) => [table, 0]));
    for (const row of await queryRows<{ db: string; tbl: string; chunks: string | number }>(
      connection,
      diffQuerySql(schema),
    )) {
      const table = `${row.db}.${row.tbl}`;
      if (table in diffs) diffs[table] = Number(row.chunks);
    }
    replica.outcome = { host: replica.host, status: 'checked', diffs };
  } catch (error) {
    replica.outcome = failedOutcome(replica.host, (error as Error).message);
  }
}

export interface ChecksumSchedule {
  stop(): void;
}

/**
 * Runs runChecksum on checksum.schedule. A tick that arrives while a run is still going is
 * skipped, so a slow check never piles up on itself.
 */
export function startChecksumSchedule(
  config: LoadedConfig,
  deps: ChecksumDeps & { writerLookup?: () => string | undefined; enabled?: () => boolean } = {},
): ChecksumSchedule | undefined {
  const expression = config.checksum.schedule;
  if (!expression) return undefined;
  const log = deps.logger ?? silentLogger;
  let running = false;
  const task = cron.schedule(expression, async () => {
    if (running) {
      log.warn(
        { event: 'checksum.tick_skipped' },
        'previous consistency check still running; skipping this tick',
      );
      return;
    }
    // Several managers: only the leader runs the scheduled check.
    if (deps.enabled && !deps.enabled()) return;
    running = true;
    try {
      const writer = deps.writerLookup ? deps.writerLookup() : deps.writer;
      await runChecksum(config, { ...deps, writer });
    } catch (error) {
      log.error(
        { event: 'checksum.failed', error: (error as Error).message },
        'scheduled consistency check failed',
      );
    } finally {
      running = false;
    }
  });
  return { stop: () => void task.stop() };
}
