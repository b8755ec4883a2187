import express, { type Request, type Response } from 'express';
import type { Connection } from '../mysql/connect.js';
import { queryRows } from '../mysql/connect.js';
import type { LeaseStatus } from './lease.js';
import { openLocal, type LocalMysql } from './local-fence.js';

/**
 * The agent's health endpoints for routers that poll (HAProxy `option httpchk`, a cloud load
 * balancer's target check, a readiness probe): `GET /health/writer` and `GET /health/reader`.
 * No token: each reveals one bit. 200 or 503, with a one-line reason as the body.
 */

/** What the manager's latest exchange said of this host (optional fields of SyncRequest). */
export interface ExchangeRoles {
  /** Every role this host holds (an IP of it, or the assignment of a role without IPs). */
  roles: string[];
  writerRole?: string;
  maxLagMs?: number;
}

/** The local server as read live: read_only and the default replication channel. */
export type ServerReading =
  | {
      ok: true;
      readOnly: boolean;
      /** Absent when SHOW SLAVE STATUS is empty (no replication configured). */
      replica?: { ioRunning: boolean; sqlRunning: boolean; secondsBehind: number | null };
    }
  | { ok: false; error: string };

export interface HealthVerdict {
  healthy: boolean;
  reason: string;
  /** Everything else holds: the answer depends on a live read of the server, not given. */
  needsServer?: true;
}

type LeaseView = Pick<LeaseStatus, 'holding' | 'lapsed' | 'fenced'>;

/**
 * 200 only while the manager's latest exchange made this host the writer, its agent holds the
 * writer lease (a lapsed lease answers 503 at once, before or without its fence) and the server
 * says read_only=OFF now.
 */
export function writerHealth(input: {
  exchange?: ExchangeRoles;
  lease: LeaseView;
  server?: ServerReading;
}): HealthVerdict {
  const { exchange, lease, server } = input;
  if (!exchange) return down('no exchange with the manager yet');
  if (!exchange.writerRole || !exchange.roles.includes(exchange.writerRole))
    return down('not the writer per the manager');
  if (!lease.holding)
    return down(
      lease.lapsed
        ? `writer lease lapsed${lease.fenced ? ' (fenced)' : ''}`
        : 'writer lease not held',
    );
  if (!server) return { healthy: false, reason: 'read_only not read', needsServer: true };
  if (!server.ok) return down(`cannot read read_only: ${server.error}`);
  if (server.readOnly) return down('read_only=ON');
  return up('writer: lease held, read_only=OFF');
}

/**
 * 200 while the manager's latest exchange gave this host a role other than the writer's and its
 * replication is within max_lag, measured here from SHOW SLAVE STATUS (both threads running,
 * Seconds_Behind_Master at most max_lag). The writer's own replication (from the passive master)
 * is not held against it, as the engine does not either; a host with no replication configured
 * has no lag.
 */
export function readerHealth(input: {
  exchange?: ExchangeRoles;
  server?: ServerReading;
}): HealthVerdict {
  const { exchange, server } = input;
  if (!exchange) return down('no exchange with the manager yet');
  const readerRoles = exchange.roles.filter((role) => role !== exchange.writerRole);
  if (readerRoles.length === 0) return down('holds no reader role per the manager');
  const isWriter =
    exchange.writerRole !== undefined && exchange.roles.includes(exchange.writerRole);
  if (!server) return { healthy: false, reason: 'replication not read', needsServer: true };
  if (!server.ok) return down(`cannot read the server: ${server.error}`);
  const replica = server.replica;
  const roles = readerRoles.join(',');
  if (isWriter || !replica) return up(`reader (${roles})`);
  if (!replica.ioRunning || !replica.sqlRunning)
    return down(
      `replication not running (io ${replica.ioRunning ? 'yes' : 'no'}, sql ${replica.sqlRunning ? 'yes' : 'no'})`,
    );
  if (replica.secondsBehind === null) return down('replication lag unknown');
  const maxLagMs = exchange.maxLagMs;
  if (maxLagMs !== undefined && replica.secondsBehind * 1000 > maxLagMs)
    return down(`lag ${replica.secondsBehind}s above max_lag ${maxLagMs}ms`);
  return up(`reader (${roles}), lag ${replica.secondsBehind}s`);
}

function up(reason: string): HealthVerdict {
  return { healthy: true, reason };
}
function down(reason: string): HealthVerdict {
  return { healthy: false, reason };
}

/** The latest role set the manager sent (kept until the next exchange replaces it). */
export class ExchangeRolesStore {
  private latest?: ExchangeRoles;
  note(roles: ExchangeRoles): void {
    this.latest = roles;
  }
  get(): ExchangeRoles | undefined {
    return this.latest;
  }
}

/** Health answers are at most this old: polled by every router every second or two, cheaply. */
export const HEALTH_CACHE_MS = 100;
/** A hung server must not hold a router's check for its whole timeout: 503 after this. */
export const HEALTH_READ_TIMEOUT_MS = 1000;

interface SlaveRow {
  Slave_IO_Running?: string;
  Slave_SQL_Running?: string;
  Seconds_Behind_Master?: number | string | null;
}

/** One live read of the local server: read_only and the default replication channel. */
export async function readLocalServer(
  mysql: LocalMysql,
  timeoutMs = HEALTH_READ_TIMEOUT_MS,
): Promise<ServerReading> {
  let connection: Connection | undefined;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<ServerReading>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, error: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  const read = (async (): Promise<ServerReading> => {
    connection = await openLocal(mysql, timeoutMs);
    const [row] = await queryRows<{ read_only: number | string }>(
      connection,
      'SELECT @@global.read_only AS read_only',
    );
    const [slave] = await queryRows<SlaveRow>(connection, 'SHOW SLAVE STATUS');
    const behind = slave?.Seconds_Behind_Master;
    return {
      ok: true,
      readOnly: Number(row?.read_only) !== 0,
      replica: slave && {
        ioRunning: slave.Slave_IO_Running === 'Yes',
        sqlRunning: slave.Slave_SQL_Running === 'Yes',
        secondsBehind: behind === null || behind === undefined ? null : Number(behind),
      },
    };
  })().catch((error: Error): ServerReading => ({ ok: false, error: error.message }));
  // The connection goes when the read ends, or at the deadline (a query waiting on a hung server).
  const close = () => (connection as Connection | undefined)?.destroy();
  void read.then(close);
  try {
    return await Promise.race([read, deadline]);
  } finally {
    clearTimeout(timer);
    close();
  }
}

/**
 * The local server's state for the health endpoints: one read in flight at a time, shared by every
 * request that arrives meanwhile, and its result reused for HEALTH_CACHE_MS from when it started.
 */
export class LiveServerState {
  private cached?: { reading: ServerReading; startedAt: number };
  private inFlight?: Promise<ServerReading>;
  private readonly now: () => number;

  constructor(
    private readonly read: () => Promise<ServerReading>,
    options: { now?: () => number; cacheMs?: number } = {},
  ) {
    this.now = options.now ?? Date.now;
    this.cacheMs = options.cacheMs ?? HEALTH_CACHE_MS;
  }
  private readonly cacheMs: number;

  current(): Promise<ServerReading> {
    const cached = this.cached;
    if (cached && this.now() - cached.startedAt <= this.cacheMs)
      return Promise.resolve(cached.reading);
    if (this.inFlight) return this.inFlight;
    const startedAt = this.now();
    const work = this.read()
      .catch((error: Error): ServerReading => ({ ok: false, error: error.message }))
      .then((reading) => {
        this.cached = { reading, startedAt };
        return reading;
      })
      .finally(() => {
        if (this.inFlight === work) this.inFlight = undefined;
      });
    this.inFlight = work;
    return work;
  }
}

export interface HealthDeps {
  exchange: ExchangeRolesStore;
  lease: () => LeaseView;
  /** Undefined without a `mysql` section: the writer endpoint then never answers 200. */
  server?: LiveServerState;
}

export const HEALTH_PATHS = /^\/health\/(writer|reader)$/;

/** GET /health/writer and /health/reader, with no token, before any request budget. */
export function healthRouter(deps: HealthDeps): express.Router {
  const router = express.Router();
  const answer = (response: Response, verdict: HealthVerdict) => {
    response
      .status(verdict.healthy ? 200 : 503)
      .set('cache-control', 'no-store')
      // A router keeps no agent socket between its checks: on the agent's listener an idle
      // keep-alive check would hold a place in its address's connection budget, which it shares
      // with the manager's exchange or a peer's lease pings when it runs on their host.
      .set('connection', 'close')
      .type('text/plain')
      .send(`${verdict.reason}\n`);
  };
  const serverReading = async (): Promise<ServerReading> =>
    deps.server
      ? deps.server.current()
      : { ok: false, error: 'no mysql section in the agent file' };
  router.get('/health/writer', (_request: Request, response: Response) => {
    const exchange = deps.exchange.get();
    const lease = deps.lease();
    const early = writerHealth({ exchange, lease });
    // Only a writer holding its lease is worth a read of the server.
    if (!early.needsServer) return answer(response, early);
    void serverReading().then((server) =>
      // The lease again: it may have lapsed while the server was read.
      answer(
        response,
        writerHealth({ exchange: deps.exchange.get(), lease: deps.lease(), server }),
      ),
    );
  });
  router.get('/health/reader', (_request: Request, response: Response) => {
    const exchange = deps.exchange.get();
    const early = readerHealth({ exchange });
    if (!early.needsServer) return answer(response, early);
    void serverReading().then((server) =>
      answer(response, readerHealth({ exchange: deps.exchange.get(), server })),
    );
  });
  return router;
}
