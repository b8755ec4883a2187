import type { HostConfig } from '../config/schema.js';
import type { CheckName, CheckOutcome, HostObservation } from '../domain/observation.js';
import {
  openConnection,
  queryBatch,
  queryRows,
  type Connection,
  type RowData,
} from '../mysql/connect.js';
import {
  flavorOf,
  parseReplicationStatus,
  replicationStatusQuery,
  type Flavor,
} from '../mysql/dialect.js';
import { POSITION_COLUMNS, positionsFromRow } from '../mysql/positions.js';
import type { CheckConnections } from './check-connections.js';

export interface CheckTarget {
  name: string;
  host: HostConfig;
  user: string;
  password: string;
  connectTimeoutMs: number;
  /** Whole-host budget: past it the connection is destroyed and the host counts as unreachable. */
  checkTimeoutMs: number;
  heartbeat: { schema: string; writerServerId?: number };
}

class CheckTimeout extends Error {}

/** What the last check on a kept connection learnt of its server, to batch the next one. */
interface ServerKnown {
  flavor: Flavor;
  serverId?: number;
}
const knownOf = new WeakMap<Connection, ServerKnown>();

const variablesQuery =
  `SELECT @@global.read_only AS read_only, @@version AS version, ${POSITION_COLUMNS}, ` +
  '@@global.slave_net_timeout AS slave_net_timeout, @@global.gtid_strict_mode AS gtid_strict_mode, CONNECTION_ID() AS connection_id, ' +
  // The server's own clock beside its uptime dates its start (src/monitor/restart.ts).
  'UNIX_TIMESTAMP(NOW(6)) AS server_time';
const uptimeQuery = "SHOW GLOBAL STATUS LIKE 'Uptime'";
/** The writer's server_id is a number (Number() of the config's): inlined, so that it can be batched. */
const lagQuery = (schema: string, writerServerId: number) =>
  `SELECT TIMESTAMPDIFF(MICROSECOND, MAX(ts), UTC_TIMESTAMP(6)) / 1000000 AS lag FROM \`${schema}\`.heartbeat WHERE server_id = ${Number(writerServerId)}`;

/** Whether the heartbeat lag is read on a host: not without a known writer, not on the writer. */
const lagWanted = (target: CheckTarget, serverId: number | undefined) =>
  target.heartbeat.writerServerId !== undefined && target.heartbeat.writerServerId !== serverId;

/** A failure the server reported for a statement (the connection still works), not a lost link. */
const isStatementError = (error: unknown) =>
  typeof (error as { errno?: unknown }).errno === 'number' &&
  (error as { fatal?: boolean }).fatal !== true;

/**
 * Observes one host with one connection: the host's kept connection when `connections` has one
 * that still answers, else a new one (given back to `connections` when every query succeeded).
 * Every query runs under the host's own time budget, so a hung server costs at most
 * checkTimeoutMs and never delays other hosts.
 */
export async function observeHost(
  target: CheckTarget,
  at = Date.now(),
  connections?: CheckConnections,
): Promise<HostObservation> {
  const checks: HostObservation['checks'] = {};
  const observation: HostObservation = { host: target.name, at, reachable: false, checks };
  let connection: Connection | undefined;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new CheckTimeout(`no answer within ${target.checkTimeoutMs} ms`)),
      target.checkTimeoutMs,
    );
  });
  const record = (name: CheckName, started: number, ok: boolean, detail?: string) => {
    const outcome: CheckOutcome = { ok, at: Date.now(), durationMs: Date.now() - started, detail };
    checks[name] = outcome;
  };
  const bounded = <T>(work: Promise<T>): Promise<T> => Promise.race([work, deadline]);
  /**
   * A server that greeted but does not answer `SELECT 1` within connect_timeout is as unresponsive
   * as one that never greets (mysql2's connectTimeout already covers the greeting and the login):
   * the ping fails then, not only at the whole-host budget, so a hung server costs each cycle
   * connect_timeout, as a silent one does.
   */
  const answered = <T>(work: Promise<T>, what: string): Promise<T> => {
    let pingTimer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      pingTimer = setTimeout(
        () => reject(new CheckTimeout(`${what} within ${target.connectTimeoutMs} ms`)),
        target.connectTimeoutMs,
      );
    });
    return bounded(Promise.race([work, late])).finally(() => clearTimeout(pingTimer));
  };

  let started = Date.now();
  let completed = false;
  /** The check's statements, answered in one round trip on a kept connection (see below). */
  let batched: RowData[][] | undefined;
  try {
    const kept = connections?.take(target.name);
    const known = kept ? knownOf.get(kept) : undefined;
    if (kept) {
      try {
        if (known) {
          // Every statement of the check in one round trip: with hundreds of checks a second
          // (a fleet in one process) each round trip's write and wake-up was the larger part of
          // a check's cost. The first statement's answer is the ping, under the same bound.
          const statements = [variablesQuery, uptimeQuery, replicationStatusQuery(known.flavor)];
          if (lagWanted(target, known.serverId))
            statements.push(
              lagQuery(target.heartbeat.schema, target.heartbeat.writerServerId as number),
            );
          const batch = queryBatch(kept, statements);
          batch.results.catch(() => undefined);
          await answered(batch.first, 'no answer to the check');
          try {
            batched = await bounded(batch.results);
          } catch (error) {
            // A statement refused (the heartbeat table not there yet): the check runs statement
            // by statement on this connection, which tells which one and why.
            if (!isStatementError(error)) throw error;
          }
        } else await answered(kept.query('SELECT 1'), 'no answer to SELECT 1');
        connection = kept;
        observation.connectionFresh = false;
      } catch (error) {
        kept.destroy();
        // Hung or silent: as unresponsive as a server that does not greet a new connection.
        if (error instanceof CheckTimeout) throw error;
        // Lost (the server died or restarted): a new connection says how (refused, reset...).
        started = Date.now();
      }
    }
    if (!connection) {
      connection = await bounded(
        openConnection({
          host: target.host.address,
          port: target.host.port,
          user: target.user,
          password: target.password,
          connectTimeoutMs: target.connectTimeoutMs,
          // Kept for the next checks, which send their statements in one round trip.
          multipleStatements: true,
        }),
      );
      await answered(connection.query('SELECT 1'), 'connected, but no answer to SELECT 1');
      observation.connectionFresh = true;
    }
    observation.reachable = true;
    record('ping', started, true, `connected to ${target.host.address}:${target.host.port}`);

    if (!batched) started = Date.now();
    const [variables] = batched
      ? (batched[0] as Array<Record<string, string | number | null>>)
      : await bounded(
          queryRows<Record<string, string | number | null>>(connection, variablesQuery),
        );
    const [uptime] = batched
      ? (batched[1] as Array<{ Value: string }>)
      : await bounded(queryRows<{ Value: string }>(connection, uptimeQuery));
    observation.readOnly = Number(variables?.read_only) === 1;
    observation.version = String(variables?.version ?? '');
    const positions = positionsFromRow(variables);
    observation.serverId = positions.serverId;
    observation.uptimeSeconds = Number(uptime?.Value);
    observation.connectionId = Number(variables?.connection_id);
    const serverTime = Number(variables?.server_time);
    if (variables?.server_time !== null && Number.isFinite(serverTime))
      observation.serverTimeMs = Math.round(serverTime * 1000);
    if (variables?.slave_net_timeout !== null && variables?.slave_net_timeout !== undefined)
      observation.slaveNetTimeoutSeconds = Number(variables.slave_net_timeout);
    if (variables?.gtid_strict_mode !== null && variables?.gtid_strict_mode !== undefined)
      observation.gtidStrictMode = Number(variables.gtid_strict_mode) === 1;
    observation.gtid = { ...positions.text };
    record(
      'mysql',
      started,
      true,
      `read_only=${observation.readOnly ? 'ON' : 'OFF'}, uptime ${observation.uptimeSeconds} s, gtid ${observation.gtid.currentPos || '-'}${observation.gtidStrictMode === false ? ', WARNING gtid_strict_mode=OFF' : ''}`,
    );

    const flavor = flavorOf(observation.version);
    if (!batched) started = Date.now();
    const [statusRow] =
      batched && known?.flavor === flavor
        ? (batched[2] as Array<Record<string, unknown>>)
        : await bounded(
            queryRows<Record<string, unknown>>(connection, replicationStatusQuery(flavor)),
          );
    observation.replication = parseReplicationStatus(statusRow);
    const replication = observation.replication;
    if (!replication) {
      record('rep_threads', started, true, 'no replication configured');
      record('rep_backlog', started, true, 'no replication configured');
    } else {
      const threadsOk = replication.ioRunning && replication.sqlRunning;
      const error = replication.lastIoError || replication.lastSqlError;
      record(
        'rep_threads',
        started,
        threadsOk,
        `IO ${replication.ioRunning ? 'Yes' : replication.ioState || 'No'}, SQL ${replication.sqlRunning ? 'Yes' : 'No'}${error ? `: ${error}` : ''}`,
      );
      record(
        'rep_backlog',
        started,
        !replication.relayBacklog || replication.sqlRunning,
        replication.relayBacklog ? 'relay log not fully applied' : 'relay log applied',
      );
    }

    if (!batched) started = Date.now();
    const batchedLag = batched && batched.length > 3 ? batched[3] : undefined;
    if (target.heartbeat.writerServerId === undefined) {
      observation.heartbeatLagSeconds = null;
      record('lag', started, true, 'no writer known: heartbeat lag not measured');
    } else if (target.heartbeat.writerServerId === observation.serverId) {
      observation.heartbeatLagSeconds = 0;
      record('lag', started, true, 'writer (heartbeat source)');
    } else {
      try {
        const [row] = batchedLag
          ? (batchedLag as Array<{ lag: string | number | null }>)
          : await bounded(
              queryRows<{ lag: string | number | null }>(
                connection,
                lagQuery(target.heartbeat.schema, target.heartbeat.writerServerId),
              ),
            );
        observation.heartbeatLagSeconds =
          row?.lag === null || row?.lag === undefined ? null : Math.max(0, Number(row.lag));
        record(
          'lag',
          started,
          observation.heartbeatLagSeconds !== null,
          observation.heartbeatLagSeconds === null
            ? 'no heartbeat row from the writer yet'
            : `${observation.heartbeatLagSeconds.toFixed(3)} s`,
        );
      } catch (error) {
        if (error instanceof CheckTimeout) throw error;
        observation.heartbeatLagSeconds = null;
        record('lag', started, false, `heartbeat table not readable: ${(error as Error).message}`);
      }
    }
    knownOf.set(connection, { flavor, serverId: observation.serverId });
    completed = true;
  } catch (error) {
    let message = (error as Error).message;
    if (!observation.reachable) {
      // mysql2's connectTimeout runs until the login completed: a hung server (the kernel accepts
      // into the backlog, the process never greets) ends here as well as an unreachable host.
      if ((error as NodeJS.ErrnoException).code === 'ETIMEDOUT' && !connection)
        message = `${message}: no connection, or no server greeting and login, within ${target.connectTimeoutMs} ms`;
      observation.error = message;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ECONNREFUSED') observation.refusal = 'refused';
      else if (code === 'ECONNRESET' || code === 'PROTOCOL_CONNECTION_LOST')
        observation.refusal = 'reset';
      record('ping', started, false, message);
    } else {
      // Reachable but a later query failed or timed out: the host is not healthy enough to trust.
      observation.reachable = false;
      observation.error = `query failed: ${message}`;
      record('mysql', started, false, message);
    }
  } finally {
    clearTimeout(timer);
    if (connection && completed && connections) connections.give(target.name, connection);
    else connection?.destroy();
  }
  return observation;
}
