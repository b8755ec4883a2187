import { isIP } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { requireBearerToken } from '../api/auth.js';
import { errorHandler, HttpError, requireJson, sendError } from '../api/errors.js';
import { AGENT_LIMITS, inFlightLimit } from '../api/limits.js';
import { silentLogger, type Logger } from '../log.js';
import type { SnapshotInfo, SnapshotMethod } from '../snapshot/types.js';
import type { AgentConfig } from './config.js';
import type { HeldAddress, VipDriver } from './vip-driver.js';

export interface AgentAppOptions {
  config: AgentConfig;
  driver: VipDriver;
  /** Absent when this build or host has no implementation for snapshot.method: endpoints answer 501. */
  snapshotMethod?: SnapshotMethod;
  getToken: () => string;
  logger?: Logger;
  /** Requests handled at once before 503 (default AGENT_LIMITS.maxInFlight). */
  maxInFlight?: number;
  /** Called when a gratuitous ARP finished (tests wait on it instead of sleeping). */
  onAnnounced?: (ip: string, result: { ok: boolean; detail: string }) => void;
}

const ipv4 = z.string().refine((text) => isIP(text) === 4, { message: 'must be an IPv4 address' });
const addBody = z.strictObject({ ip: ipv4, interface: z.string().min(1).optional(), prefix: z.number().int().min(8).max(32).optional() });
const removeBody = z.strictObject({ ip: ipv4, interface: z.string().min(1).optional() });
const snapshotBody = z.strictObject({ id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 letters, digits, "_", "." or "-"'), path: z.string().optional() });

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) {
    const detail = parsed.error.issues
      .map((issue) => {
        const path = issue.path.join('.') || 'body';
        return issue.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.join(', ')}` : `${path}: ${issue.message}`;
      })
      .join('; ');
    throw new HttpError(400, 'malformed', detail);
  }
  return parsed.data;
}

/** One change at a time: a list-then-add must not interleave with another request's remove. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.tail.then(work, work);
    this.tail = next.catch(() => undefined);
    return next;
  }
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
export function createAgentApp(options: AgentAppOptions): express.Express {
  const { config, driver } = options;
  const log = options.logger ?? silentLogger;
  const lock = new Mutex();
  const app = express();
  app.disable('x-powered-by');
  app.use(inFlightLimit(options.maxInFlight ?? AGENT_LIMITS.maxInFlight));

  app.use((request, response, next) => {
    const started = process.hrtime.bigint();
    response.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const level = response.statusCode >= 500 ? 'error' : response.statusCode >= 400 ? 'warn' : 'info';
      log[level](
        { event: 'agent.request', method: request.method, path: request.originalUrl.split('?')[0], status: response.statusCode, ms: Math.round(ms * 10) / 10, remote: request.socket.remoteAddress, ...(response.locals.refusal ? { reason: response.locals.refusal } : {}) },
        'request',
      );
    });
    next();
  });

  app.get('/healthz', (_request, response) => {
    response.json({ ok: true });
  });

  const api = express.Router();
  api.use(requireBearerToken(options.getToken));
  api.use(requireJson);
  api.use(express.json({ limit: '16kb', strict: true, type: 'application/json' }));

  const refuse = (response: Response, status: number, code: string, detail: string) => {
    response.locals.refusal = detail;
    throw new HttpError(status, code, detail);
  };
  const vipConfig = (response: Response) => {
    if (!config.vip) refuse(response, 409, 'not_configured', 'this agent has no "vip" section in its config, so it holds no VIPs');
    return config.vip as NonNullable<AgentConfig['vip']>;
  };
  const checkTarget = (response: Response, ip: string, iface: string | undefined) => {
    const vip = vipConfig(response);
    if (iface !== undefined && iface !== vip.interface) refuse(response, 403, 'interface_not_allowed', `interface "${iface}" is not this agent's VIP interface ("${vip.interface}")`);
    if (!vip.ips.includes(ip)) refuse(response, 403, 'ip_not_allowed', `${ip} is not one of this agent's VIPs (${vip.ips.join(', ')})`);
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
      response.json({ interface: vip.interface, allowed: vip.ips, held: addresses.filter((address) => vip.ips.includes(address.ip)) });
    }),
  );

  api.post(
    '/vips/add',
    route(async (request, response) => {
      const body = parseBody(addBody, request.body);
      const vip = checkTarget(response, body.ip, body.interface);
      const prefix = body.prefix ?? 24;
      const result = await lock.run(async () => {
        const before = await held(vip.interface);
        if (before.some((address) => address.ip === body.ip)) return { changed: false };
        await driver.add(body.ip, prefix, vip.interface);
        const after = await held(vip.interface);
        if (!after.some((address) => address.ip === body.ip)) throw new HttpError(500, 'not_applied', `${body.ip} is not on ${vip.interface} after ip addr add`);
        log.info({ event: 'vip.added', ip: body.ip, prefix, interface: vip.interface }, 'added VIP');
        return { changed: true };
      });
      // The gratuitous ARP blocks about a second; it runs after the reply is on its way, and also on a
      // no-op add, because a retried add may be the one whose first announcement was lost.
      response.on('finish', () => {
        driver.announce(body.ip, vip.interface).then(
          (detail) => {
            log.info({ event: 'vip.announced', ip: body.ip, interface: vip.interface, detail }, 'gratuitous ARP sent');
            options.onAnnounced?.(body.ip, { ok: true, detail });
          },
          (error: Error) => {
            log.warn({ event: 'vip.announce_failed', ip: body.ip, interface: vip.interface, error: error.message }, 'gratuitous ARP failed');
            options.onAnnounced?.(body.ip, { ok: false, detail: error.message });
          },
        );
      });
      response.json({ ip: body.ip, interface: vip.interface, prefix, changed: result.changed });
    }),
  );

  api.post(
    '/vips/remove',
    route(async (request, response) => {
      const body = parseBody(removeBody, request.body);
      const vip = checkTarget(response, body.ip, body.interface);
      const result = await lock.run(async () => {
        const current = (await held(vip.interface)).find((address) => address.ip === body.ip);
        if (!current) return { changed: false, prefix: undefined };
        await driver.remove(body.ip, current.prefix, vip.interface);
        const after = await held(vip.interface);
        if (after.some((address) => address.ip === body.ip)) throw new HttpError(500, 'not_applied', `${body.ip} is still on ${vip.interface} after ip addr del`);
        log.info({ event: 'vip.removed', ip: body.ip, prefix: current.prefix, interface: vip.interface }, 'removed VIP');
        return { changed: true, prefix: current.prefix };
      });
      response.json({ ip: body.ip, interface: vip.interface, ...(result.prefix === undefined ? {} : { prefix: result.prefix }), changed: result.changed });
    }),
  );

  const snapshots = (response: Response) => {
    if (!config.snapshot) refuse(response, 409, 'not_configured', 'this agent has no "snapshot" section in its config');
    if (!options.snapshotMethod) refuse(response, 501, 'not_implemented', `snapshot method "${config.snapshot?.method}" is not available in this agent`);
    return { method: options.snapshotMethod as SnapshotMethod, settings: config.snapshot as NonNullable<AgentConfig['snapshot']> };
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
      if (body.path !== undefined && body.path !== settings.path) refuse(response, 403, 'path_not_allowed', `path "${body.path}" is not this agent's snapshot path ("${settings.path}")`);
      const info = await snapshotLock.run(async () => {
        if ((await method.list()).some((snapshot) => snapshot.id === body.id)) refuse(response, 409, 'exists', `snapshot "${body.id}" already exists`);
        log.info({ event: 'snapshot.take', id: body.id, method: method.name, path: settings.path }, 'taking snapshot');
        return method.take({ id: body.id });
      });
      log.info({ event: 'snapshot.taken', id: info.id, method: info.method, gtid: info.gtidPosition }, 'snapshot taken');
      response.status(201).json(info);
    }),
  );

  api.delete(
    '/snapshots/:id',
    route(async (request, response) => {
      const id = parseBody(snapshotBody, { id: request.params.id }).id;
      const { method } = snapshots(response);
      const removed = await snapshotLock.run(async () => {
        const found: SnapshotInfo | undefined = (await method.list()).find((snapshot) => snapshot.id === id);
        if (!found) return false;
        await method.remove(found);
        log.info({ event: 'snapshot.removed', id }, 'snapshot removed');
        return true;
      });
      response.json({ id, removed });
    }),
  );

  api.use((request, response) => sendError(response, 404, 'not_found', `no route ${request.method} ${request.baseUrl}${request.path}`));
  app.use('/api/v1', api);
  app.use((request, response) => sendError(response, 404, 'not_found', `no route ${request.method} ${request.path}`));
  app.use(errorHandler);
  return app;
}
