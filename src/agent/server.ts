import express, { type NextFunction, type Request, type Response } from 'express';
import { requireBearerToken } from '../api/auth.js';
import { errorHandler, requireJson, sendError } from '../api/errors.js';
import { AGENT_LIMITS, bodyDeadline, inFlightLimit } from '../api/limits.js';
import { normalAddress, RecentlyAuthenticated } from '../net/admission.js';
import { peerAddress } from './peers.js';
import { TlsDispatcher } from '../net/tls.js';
import { silentLogger } from '../log.js';
import { LeaseKeeper } from './lease.js';
import { HostFence } from './host-fence.js';
import { localMysqlOf } from './local-fence.js';
import {
  ExchangeRolesStore,
  healthRouter,
  LiveServerState,
  readLocalServer,
  type HealthDeps,
} from './health.js';
import { Mutex, SequenceGuard } from './mutex.js';
import { createSyncRouter } from './sync-routes.js';
import { WriterProbe } from './writer-probe.js';
import { parseBody, refuser, requestLog } from './http.js';
import { pingAgent } from './lease-ping.js';
import { snapshotRouter } from './transfer/snapshot-routes.js';
import { transferRouter } from './transfer/routes.js';
import { announcer, vipRouter } from './vip-routes.js';
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

  app.use(requestLog(log));

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

  const refuse = refuser(log, sequence);
  const announceAfter = announcer(driver, log, options.onAnnounced);
  api.use(vipRouter({ config, driver, lock, sequence, log, refuse, announceAfter }));
  api.use(snapshotRouter({ config, snapshotMethod: options.snapshotMethod, log, refuse }));
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
