import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import express, { type Router } from 'express';
import {
  bodyDeadline,
  inFlightLimit,
  MANAGER_LIMITS,
  perTokenLimit,
  type ServerLimits,
} from './limits.js';
import { admitConnections } from '../net/admission.js';
import { reloadOnChange, serverTlsOptions, type ServerTlsFiles } from '../net/tls.js';
import type { Logger } from '../log.js';
import { gzipped } from '../exporter/encoding.js';
import type { MetricsSource } from '../exporter/merge.js';
import { actAsPrincipal, requireScopedToken, scopeFor, type TokenSpec } from './scopes.js';
import { errorHandler, requireJson, sendError } from './errors.js';

export interface HttpAppOptions {
  /** What /metrics serves: one cluster's registry, or every cluster's merged. */
  metrics: MetricsSource;
  /** The configured API tokens, read per request (rotation); a single token is `[{name: 'admin', scopes: ['admin']}]`. */
  getTokens: () => TokenSpec[];
  /** Require a read-scoped token on /metrics too (config `metrics_auth`). */
  metricsAuth?: boolean;
  /** Routers mounted under /api/v1, all behind the bearer token. */
  apiRouters: Router[];
  /** Run under /api/v1 before authentication (taking the cluster's name out of the URL, so scopes read the plain route). */
  apiBeforeAuth?: express.RequestHandler[];
  /** Readiness: false until the first monitor cycle finished, for example. */
  isReady?: () => { ready: boolean; detail: string };
  logger?: Logger;
  bodyLimit?: string;
  /** Run before authentication on every request (e.g. counting webhook requests by final status). */
  beforeAll?: express.RequestHandler[];
  /** Requests handled at once before 503 (default MANAGER_LIMITS.maxInFlight). */
  maxInFlight?: number;
  /** Per-client, per-token and body limits (default MANAGER_LIMITS). */
  limits?: ServerLimits;
}

export function createHttpApp(options: HttpAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  for (const handler of options.beforeAll ?? []) app.use(handler);
  const limits = options.limits ?? MANAGER_LIMITS;
  // Routes under /api/v1 need the scope scopeFor() names; /metrics (when protected) needs read.
  const auth = requireScopedToken(options.getTokens, (request) =>
    scopeFor(request.method, request.path),
  );
  const metricsAuth = requireScopedToken(options.getTokens, () => 'read');

  app.get('/healthz', (_request, response) => {
    response.json({ ok: true });
  });
  app.get('/readyz', (_request, response) => {
    const readiness = options.isReady?.() ?? { ready: true, detail: 'ready' };
    response.status(readiness.ready ? 200 : 503).json(readiness);
  });
  // Health and metrics come before the request budget: slow API clients cannot starve them.
  const metricsHandlers: express.RequestHandler[] = options.metricsAuth ? [metricsAuth] : [];
  app.get('/metrics', ...metricsHandlers, async (request, response, next) => {
    try {
      const rendered = await options.metrics.render();
      // Prometheus asks for gzip on every scrape: a fleet's exposition is over a megabyte per
      // scrape and per Prometheus server, and the event loop that writes it also runs the cycles.
      const compress = request.acceptsEncodings('gzip', 'identity') === 'gzip';
      const body = compress ? await gzipped(rendered) : rendered.body;
      // Written as is: send() would hash the whole exposition for an ETag on every scrape, and
      // Prometheus never sends If-None-Match.
      response.status(200).setHeader('Content-Type', rendered.contentType);
      response.setHeader('Vary', 'Accept-Encoding');
      if (compress) response.setHeader('Content-Encoding', 'gzip');
      response.end(body);
    } catch (error) {
      next(error);
    }
  });

  app.use(inFlightLimit(options.maxInFlight ?? limits.maxInFlight, limits.perClientInFlight));
  const api = express.Router();
  for (const handler of options.apiBeforeAuth ?? []) api.use(handler);
  api.use(auth);
  api.use(perTokenLimit(limits.perTokenInFlight));
  api.use(requireJson);
  api.use(bodyDeadline(limits.bodyTimeoutMs));
  api.use(
    express.json({ limit: options.bodyLimit ?? '1mb', strict: true, type: 'application/json' }),
  );
  api.use(actAsPrincipal);
  for (const router of options.apiRouters) api.use(router);
  api.use((request, response) =>
    sendError(
      response,
      404,
      'not_found',
      `no route ${request.method} ${request.baseUrl}${request.path}`,
    ),
  );
  // The plain metrics listener has no API: a token must never be sent over it.
  if (options.apiRouters.length > 0) app.use('/api/v1', api);
  app.use((request, response) =>
    sendError(response, 404, 'not_found', `no route ${request.method} ${request.path}`),
  );
  app.use(errorHandler);
  return app;
}

/**
 * Listens on HOST:PORT with the limits of limits.ts (timeouts for slow clients, a socket cap);
 * HTTPS when `tls` is given (mutual TLS with its client_ca_file), its files re-read on change.
 */
export function listen(
  app: express.Express,
  address: string,
  limits: ServerLimits = MANAGER_LIMITS,
  tls?: { files: ServerTlsFiles; log?: Logger },
  admission: {
    trusted?: (address: string) => boolean;
    priority?: (address: string) => boolean;
    log?: Logger;
  } = {},
): Promise<Server> {
  const index = address.lastIndexOf(':');
  const host = address.slice(0, index).replace(/^\[|\]$/g, '') || '0.0.0.0';
  const port = Number(address.slice(index + 1));
  const serverOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.checkIntervalMs,
  };
  let server: Server;
  if (tls) {
    const secure = createHttpsServer(
      {
        ...serverOptions,
        ...serverTlsOptions(tls.files),
        handshakeTimeout: limits.handshakeTimeoutMs,
      },
      app,
    );
    reloadOnChange(secure, tls.files, tls.log);
    server = secure;
  } else {
    server = createServer(serverOptions, app);
  }
  admitConnections(
    server,
    {
      maxConnections: limits.maxConnections,
      perClient: limits.perClientConnections,
      preAuth: limits.preAuthConnections,
      reserved: limits.reservedConnections,
      reservedPerClient: limits.reservedPerClientConnections,
      priorityReserved: limits.priorityReservedConnections,
      // With TLS the handshake comes first and has its own deadline.
      firstRequestMs: limits.headersTimeoutMs + (tls ? limits.handshakeTimeoutMs : 0),
    },
    {
      tls: tls !== undefined,
      trusted: admission.trusted,
      priority: admission.priority,
      log: admission.log ?? tls?.log,
    },
  );
  return new Promise((resolve, reject) => {
    server.once('listening', () => resolve(server));
    server.once('error', reject);
    server.listen(port, host);
  });
}

/** The URL a server answers on: https when it is a TLS server. */
export function serverUrl(server: Server, listenAddress: string): string {
  const address = server.address();
  const scheme = server instanceof HttpsServer ? 'https' : 'http';
  const configured = listenAddress.slice(0, listenAddress.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  if (typeof address !== 'object' || !address) return `${scheme}://${listenAddress}`;
  const host = configured === '' || configured === '0.0.0.0' ? '127.0.0.1' : configured;
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}
