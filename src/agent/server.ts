import { isIP } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { requireBearerToken } from '../api/auth.js';
import { errorHandler, HttpError, requireJson, sendError } from '../api/errors.js';
import { AGENT_LIMITS, bodyDeadline, inFlightLimit } from '../api/limits.js';
import { normalAddress, RecentlyAuthenticated } from '../net/admission.js';
import { peerAddress } from './peers.js';
import { TlsDispatcher } from '../net/tls.js';
import { fetch as undiciFetch } from 'undici';
import { silentLogger } from '../log.js';
import type { SnapshotInfo, SnapshotMethod } from '../snapshot/types.js';
import type { AgentConfig } from './config.js';
import { LeaseKeeper } from './lease.js';
import { HostFence } from './host-fence.js';
import { localMysqlOf } from './local-fence.js';
import {
  ExchangeRolesStore,
  HEALTH_PATHS,
  healthRouter,
  LiveServerState,
  readLocalServer,
  type HealthDeps,
} from './health.js';
import { Mutex, SequenceGuard } from './mutex.js';
import { createSyncRouter } from './sync-routes.js';
import type { HeldAddress } from './vip-driver.js';
import { WriterProbe } from './writer-probe.js';
import { transferRouter } from './transfer-routes.js';
import type { AgentAppOptions } from './app-options.js';
import { speakingProtocol } from '../domain/protocol.js';

export type { AgentAppOptions } from './app-options.js';

/** Returned with the app so the agent process can stop its timers. */
export interface AgentRuntime {
  lease: LeaseKeeper;
  fence: HostFence;
  probe: WriterProbe;
  /** What the health endpoints answer from (also served on `health_listen`). */
  health: HealthDeps;
  /** Sources that get the reserved connection budget (see src/net/admission.ts). */
  trusted: (address: string) => boolean;
  /** Sources that get the priority budgets: peers and the current manager. */
  priority: (address: string) => boolean;
  stop(): void;
}

/** The manager's per-cycle exchange and the lease's agent-to-agent calls. */
const EXCHANGE_PATHS = /^\/api\/v1\/(sync|lease\/(ping|release))$/;

const ipv4 = z.string().refine((text) => isIP(text) === 4, { message: 'must be an IPv4 address' });
const addBody = z.strictObject({
  ip: ipv4,
  interface: z.string().min(1).optional(),
  prefix: z.number().int().min(8).max(32).optional(),
  seq: z.number().int().nonnegative().optional(),
});
const removeBody = z.strictObject({
  ip: ipv4,
  interface: z.string().min(1).optional(),
  seq: z.number().int().nonnegative().optional(),
});
const snapshotBody = z.strictObject({
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 letters, digits, "_", "." or "-"'),
  path: z.string().optional(),
});

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) {
    const detail = parsed.error.issues
      .map((issue) => {
        const path = issue.path.join('.') || 'body';
        return issue.code === 'unrecognized_keys'
          ? `unknown key(s) ${issue.keys.join(', ')}`
          : `${path}: ${issue.message}`;
      })
      .join('; ');
    throw new HttpError(400, 'malformed', detail);
  }
  return parsed.data;
}

type Handler = (request: Request, response: Response) => Promise<void>;
const route = (handler: Handler) => (request: Request, response: Response, next: NextFunction) => {
  handler(request, response).catch(next);
};

/**
 * The agent's HTTP API. Everything but /healthz needs the bearer token. It refuses (403 with a
 * reason) any IP, interface or path that is not in its own file, and 400 for malformed bodies;
 * a refused request changes nothing. Every request is logged with its outcome.
 */
export function createAgentApp(
  options: AgentAppOptions,
): express.Express & { runtime: AgentRuntime } {
  const { config, driver } = options;
  const log = options.logger ?? silentLogger;
  // Sources that get the reserved connection budget: the peers the file names, and addresses
  // that presented the agent token lately (the manager, whose address the file does not name).
  const recent = new RecentlyAuthenticated();
  const peerAddresses = new Set(Object.values(config.peers ?? {}).map(peerAddress));
  // The priority sources: the peers, and the manager whose current exchange this agent accepted.
  // The lease and the fence travel between them; nobody else may take their budget, not even a
  // client that holds the token (a stolen or misused token must not starve the fence's channel).
  const currentManagers = new RecentlyAuthenticated(60_000);
  const priority = (address: string) => peerAddresses.has(address) || currentManagers.has(address);
  const trusted = (address: string) => priority(address) || recent.has(address);
  const rememberAuthenticated = (request: Request, _response: Response, next: NextFunction) => {
    recent.note(request.socket.remoteAddress);
    next();
  };
  const lock = new Mutex();
  const sequence = new SequenceGuard();
  const localMysql = localMysqlOf(config);
  const removeVipsNow = async (ips: string[]): Promise<string[]> => {
    if (!config.vip) return [];
    const iface = config.vip.interface;
    const removed: string[] = [];
    for (const address of await driver.list(iface)) {
      if (!ips.includes(address.ip) || !config.vip.ips.includes(address.ip)) continue;
      await driver.remove(address.ip, address.prefix, iface);
      removed.push(address.ip);
    }
    return removed;
  };
  // Lease pings to other agents over HTTPS: this agent's certificate as the client certificate
  // (peers with client_ca_file require one), peers verified against peer_ca_file or client_ca_file.
  const peerTls = config.tls
    ? new TlsDispatcher({
        ca_file: config.tls.peer_ca_file ?? config.tls.client_ca_file,
        cert_file: config.tls.cert_file,
        key_file: config.tls.key_file,
      })
    : undefined;
  const hostFence = new HostFence({
    config,
    mysql: localMysql,
    lock,
    removeVips: removeVipsNow,
    log,
    fence: options.fence,
  });
  const lease = new LeaseKeeper({
    log,
    ping:
      options.ping ??
      ((url, from, timeoutMs) => pingAgent(url, from, options.getToken(), timeoutMs, peerTls)),
    fence: (vips, reason) => hostFence.run(vips, reason),
  });
  const probe = new WriterProbe(options.probe);
  const exchangeRoles = new ExchangeRolesStore();
  const health: HealthDeps = {
    exchange: exchangeRoles,
    lease: () => lease.status(),
    server: options.readServer
      ? new LiveServerState(options.readServer)
      : localMysql && new LiveServerState(() => readLocalServer(localMysql)),
  };
  const app = express();
  app.disable('x-powered-by');

  app.use((request, response, next) => {
    const started = process.hrtime.bigint();
    response.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const routine = /\/api\/v1\/(sync|lease\/ping)$/.test(request.path);
      // Routers poll health every second or two; a 503 there is an answer, not a failure.
      const level = HEALTH_PATHS.test(request.path)
        ? 'debug'
        : response.statusCode >= 500
          ? 'error'
          : response.statusCode >= 400
            ? 'warn'
            : routine
              ? 'debug'
              : 'info';
      log[level](
        {
          event: 'agent.request',
          method: request.method,
          path: request.originalUrl.split('?')[0],
          status: response.statusCode,
          ms: Math.round(ms * 10) / 10,
          remote: request.socket.remoteAddress,
          ...(response.locals.refusal ? { reason: response.locals.refusal } : {}),
        },
        'request',
      );
    });
    next();
  });

  app.get('/healthz', (_request, response) => {
    response.json({ ok: true });
  });
  // Before the request budgets: a router's check must never be answered "busy".
  app.use(healthRouter(health));

  // Two request budgets: the manager's exchange and the lease's pings have their own, which
  // slow requests to the other routes cannot fill; each has a per-client cap as well.
  const limits = AGENT_LIMITS;
  const maxInFlight = options.maxInFlight ?? limits.maxInFlight;
  // The priority sources' exchange has a third budget of its own: two token holders with slow
  // bodies on /api/v1/sync fill the shared one, and the manager's fence must still get through.
  const priorityBudget = inFlightLimit(maxInFlight, limits.perClientInFlight);
  const exchangeBudget = inFlightLimit(maxInFlight, limits.perClientInFlight);
  const otherBudget = inFlightLimit(maxInFlight, limits.perClientInFlight);
  app.use((request, response, next) => {
    if (!EXCHANGE_PATHS.test(request.path)) return otherBudget(request, response, next);
    const fromPriority = priority(normalAddress(request.socket.remoteAddress));
    return (fromPriority ? priorityBudget : exchangeBudget)(request, response, next);
  });

  const api = express.Router();
  api.use(requireBearerToken(options.getToken));
  api.use(rememberAuthenticated);
  api.use(requireJson);
  api.use(bodyDeadline(limits.bodyTimeoutMs));
  api.use(express.json({ limit: '16kb', strict: true, type: 'application/json' }));

  // The gratuitous ARP blocks about a second: it runs after the reply is on its way.
  const announceAfter = (response: Response, ip: string, iface: string) => {
    response.on('finish', () => {
      driver.announce(ip, iface).then(
        (detail) => {
          log.info({ event: 'vip.announced', ip, interface: iface, detail }, 'gratuitous ARP sent');
          options.onAnnounced?.(ip, { ok: true, detail });
        },
        (error: Error) => {
          log.warn(
            { event: 'vip.announce_failed', ip, interface: iface, error: error.message },
            'gratuitous ARP failed',
          );
          options.onAnnounced?.(ip, { ok: false, detail: error.message });
        },
      );
    });
  };

  const refuse = (response: Response, status: number, code: string, detail: string): never => {
    response.locals.refusal = detail;
    // A stale sequence number is how a deposed manager shows up (several managers): say so apart.
    if (code === 'stale')
      log.warn(
        { event: 'sequence.stale_refused', detail, highest: sequence.current },
        'refused a request with a stale sequence number (fencing)',
      );
    if (code === 'sequence_too_far')
      log.warn(
        { event: 'sequence.too_far_refused', detail, highest: sequence.current },
        'refused a sequence number far above the last one: it would lock the manager out',
      );
    throw new HttpError(status, code, detail);
  };
  const vipConfig = (response: Response) => {
    if (!config.vip)
      refuse(
        response,
        409,
        'not_configured',
        'this agent has no "vip" section in its config, so it holds no VIPs',
      );
    return config.vip as NonNullable<AgentConfig['vip']>;
  };
  const checkTarget = (response: Response, ip: string, iface: string | undefined) => {
    const vip = vipConfig(response);
    if (iface !== undefined && iface !== vip.interface)
      refuse(
        response,
        403,
        'interface_not_allowed',
        `interface "${iface}" is not this agent's VIP interface ("${vip.interface}")`,
      );
    if (!vip.ips.includes(ip))
      refuse(
        response,
        403,
        'ip_not_allowed',
        `${ip} is not one of this agent's VIPs (${vip.ips.join(', ')})`,
      );
    return vip;
  };
  const held = async (iface: string): Promise<HeldAddress[]> => {
    try {
      return await driver.list(iface);
    } catch (error) {
      throw new HttpError(500, 'interface_error', (error as Error).message);
    }
  };

  api.get(
    '/vips',
    route(async (_request, response) => {
      const vip = vipConfig(response);
      const addresses = await held(vip.interface);
      response.json({
        interface: vip.interface,
        allowed: vip.ips,
        held: addresses.filter((address) => vip.ips.includes(address.ip)),
      });
    }),
  );

  api.post(
    '/vips/add',
    route(async (request, response) => {
      const body = parseBody(addBody, request.body);
      const vip = checkTarget(response, body.ip, body.interface);
      const prefix = body.prefix ?? 24;
      const result = await lock.run(async () => {
        const refusal = sequence.admit(body.seq);
        if (refusal) refuse(response, 409, refusal.code, refusal.detail);
        const before = await held(vip.interface);
        if (before.some((address) => address.ip === body.ip)) return { changed: false };
        await driver.add(body.ip, prefix, vip.interface);
        const after = await held(vip.interface);
        if (!after.some((address) => address.ip === body.ip))
          throw new HttpError(
            500,
            'not_applied',
            `${body.ip} is not on ${vip.interface} after ip addr add`,
          );
        log.info(
          { event: 'vip.added', ip: body.ip, prefix, interface: vip.interface, seq: body.seq },
          'added VIP',
        );
        return { changed: true };
      });
      // Also on a no-op add: a retried add may be the one whose first announcement was lost.
      announceAfter(response, body.ip, vip.interface);
      response.json({ ip: body.ip, interface: vip.interface, prefix, changed: result.changed });
    }),
  );

  api.post(
    '/vips/remove',
    route(async (request, response) => {
      const body = parseBody(removeBody, request.body);
      const vip = checkTarget(response, body.ip, body.interface);
      const result = await lock.run(async () => {
        const refusal = sequence.admit(body.seq);
        if (refusal) refuse(response, 409, refusal.code, refusal.detail);
        const current = (await held(vip.interface)).find((address) => address.ip === body.ip);
        if (!current) return { changed: false, prefix: undefined };
        await driver.remove(body.ip, current.prefix, vip.interface);
        const after = await held(vip.interface);
        if (after.some((address) => address.ip === body.ip))
          throw new HttpError(
            500,
            'not_applied',
            `${body.ip} is still on ${vip.interface} after ip addr del`,
          );
        log.info(
          {
            event: 'vip.removed',
            ip: body.ip,
            prefix: current.prefix,
            interface: vip.interface,
            seq: body.seq,
          },
          'removed VIP',
        );
        return { changed: true, prefix: current.prefix };
      });
      response.json({
        ip: body.ip,
        interface: vip.interface,
        ...(result.prefix === undefined ? {} : { prefix: result.prefix }),
        changed: result.changed,
      });
    }),
  );

  const snapshots = (response: Response) => {
    if (!config.snapshot)
      refuse(response, 409, 'not_configured', 'this agent has no "snapshot" section in its config');
    if (!options.snapshotMethod)
      refuse(
        response,
        501,
        'not_implemented',
        `snapshot method "${config.snapshot?.method}" is not available in this agent`,
      );
    return {
      method: options.snapshotMethod as SnapshotMethod,
      settings: config.snapshot as NonNullable<AgentConfig['snapshot']>,
    };
  };
  const snapshotLock = new Mutex();

  api.get(
    '/snapshots',
    route(async (_request, response) => {
      const { method } = snapshots(response);
      response.json({ method: method.name, snapshots: await method.list() });
    }),
  );

  api.post(
    '/snapshots',
    route(async (request, response) => {
      const body = parseBody(snapshotBody, request.body);
      const { method, settings } = snapshots(response);
      if (body.path !== undefined && body.path !== settings.path)
        refuse(
          response,
          403,
          'path_not_allowed',
          `path "${body.path}" is not this agent's snapshot path ("${settings.path}")`,
        );
      const info = await snapshotLock.run(async () => {
        if ((await method.list()).some((snapshot) => snapshot.id === body.id))
          refuse(response, 409, 'exists', `snapshot "${body.id}" already exists`);
        log.info(
          { event: 'snapshot.take', id: body.id, method: method.name, path: settings.path },
          'taking snapshot',
        );
        return method.take({ id: body.id });
      });
      log.info(
        { event: 'snapshot.taken', id: info.id, method: info.method, gtid: info.gtidPosition },
        'snapshot taken',
      );
      response.status(201).json(info);
    }),
  );

  api.delete(
    '/snapshots/:id',
    route(async (request, response) => {
      const id = parseBody(snapshotBody, { id: request.params.id }).id;
      const { method } = snapshots(response);
      const removed = await snapshotLock.run(async () => {
        const found: SnapshotInfo | undefined = (await method.list()).find(
          (snapshot) => snapshot.id === id,
        );
        if (!found) return false;
        await method.remove(found);
        log.info({ event: 'snapshot.removed', id }, 'snapshot removed');
        return true;
      });
      response.json({ id, removed });
    }),
  );

  api.use(
    createSyncRouter({
      config,
      driver,
      lock,
      sequence,
      probe,
      lease,
      fence: hostFence,
      exchangeRoles,
      log,
      protocol: options.protocol ?? speakingProtocol(),
      parse: parseBody,
      refuse,
      announceAfter,
      noteManager: (address) => currentManagers.note(address),
    }),
  );

  api.use((request, response) =>
    sendError(
      response,
      404,
      'not_found',
      `no route ${request.method} ${request.baseUrl}${request.path}`,
    ),
  );
  app.use(transferRouter(options));
  app.use('/api/v1', api);
  app.use((request, response) =>
    sendError(response, 404, 'not_found', `no route ${request.method} ${request.path}`),
  );
  app.use(errorHandler);
  const runtime: AgentRuntime = {
    lease,
    fence: hostFence,
    probe,
    health,
    trusted,
    priority,
    stop: () => {
      lease.stop();
      hostFence.stop();
      probe.stop();
      void peerTls?.close();
    },
  };
  return Object.assign(app, { runtime });
}

/** The lease's agent-to-agent contact: authenticated with the agent token every host shares. */
async function pingAgent(
  url: string,
  from: string,
  token: string,
  timeoutMs: number,
  tls?: TlsDispatcher,
): Promise<void> {
  const target = `${url.replace(/\/+$/, '')}/api/v1/lease/ping`;
  const init = {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ from }),
    signal: AbortSignal.timeout(timeoutMs),
  };
  const response =
    tls && target.startsWith('https:')
      ? await undiciFetch(target, { ...init, dispatcher: tls.get() })
      : await fetch(target, init);
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
}
