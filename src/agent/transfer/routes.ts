import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { requireBearerToken } from '../../api/auth.js';
import { HttpError, requireJson } from '../../api/errors.js';
import { AGENT_LIMITS, bodyDeadline } from '../../api/limits.js';
import { silentLogger } from '../../log.js';
import type { AgentAppOptions } from '../app-options.js';
import { agentFilePath, localServerOf } from './config.js';
import { CatalogueRefused } from '../../backup/catalogue.js';
import { AgentBackupStore } from './backup-store.js';
import { TransferSource } from './source.js';
import { readPasswordFile, TransferRefused, TransferTarget } from './target.js';
import { sourceProblem } from '../peers.js';

const transferId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 letters, digits, "_", "." or "-"');
const offerBody = z.strictObject({
  id: transferId.optional(),
  rate_limit: z.number().int().min(1024).optional(),
  /** Offer a backup kept in snapshot.backup_dir (`<host>/<dir>`) instead of a copy of the datadir. */
  backup: z.string().min(3).max(200).optional(),
});
const backupReceiveBody = z.strictObject({
  id: transferId,
  host: z.string().min(1).max(64),
  source_url: z.string().url(),
  token: z.string().min(16),
  estimated_bytes: z.number().int().min(0),
});

/** A catalogue refusal as an HTTP error: 400 for a malformed id, 404 when absent, 409 otherwise. */
function catalogueRefusal(error: unknown): unknown {
  if (!(error instanceof CatalogueRefused)) return error;
  const status = { malformed: 400, not_found: 404, in_use: 409, has_dependents: 409 }[error.code];
  return new HttpError(status, error.code, error.message);
}

/** A refusal as an HTTP error: 404 when the thing asked for is not there, 409 otherwise. */
function refusal(error: unknown): unknown {
  if (!(error instanceof TransferRefused)) return error;
  return new HttpError(error.code === 'not_found' ? 404 : 409, error.code, error.message);
}
const receiveBody = z
  .strictObject({
    id: transferId,
    operation: z.enum(['clone', 'rejoin', 'restore']).default('clone'),
    /** Pull from this source agent with its one-time token... */
    source_url: z.string().url().optional(),
    token: z.string().min(16).optional(),
    /** ...or wait for the manager to push the copy (PUT /api/v1/transfers/:id/upload). */
    upload: z.literal(true).optional(),
    estimated_bytes: z.number().int().min(0),
    writer: z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }),
  })
  .superRefine((body, ctx) => {
    const pull = body.source_url !== undefined || body.token !== undefined;
    if (pull && (body.source_url === undefined || body.token === undefined))
      ctx.addIssue({ code: 'custom', path: [], message: 'source_url and token go together' });
    if (pull === (body.upload === true))
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: 'give either source_url and token (pull from an agent) or upload: true',
      });
  });

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) {
    throw new HttpError(
      400,
      'malformed',
      parsed.error.issues
        .map((issue) =>
          issue.code === 'unrecognized_keys'
            ? `unknown key(s) ${issue.keys.join(', ')}`
            : `${issue.path.join('.') || 'body'}: ${issue.message}`,
        )
        .join('; '),
    );
  }
  return parsed.data;
}

const route =
  (handler: (request: Request, response: Response) => Promise<void>) =>
  (request: Request, response: Response, next: NextFunction) => {
    handler(request, response).catch(next);
  };

/**
 * Clone/restore endpoints of the agent (issue 14), mounted before the agent's other /api/v1 routes:
 * - POST /api/v1/transfers/offers (bearer): this host will send a copy; returns a one-time token.
 * - GET  /api/v1/transfers/:id/stream (one-time token header): the compressed copy itself.
 * - POST /api/v1/transfers/receive (bearer): pull a copy from a source agent and swap it in.
 * - PUT  /api/v1/transfers/:id/upload (bearer): the copy itself, pushed by the manager (restore).
 * - GET  /api/v1/transfers/:id (bearer): progress and outcome of a receive (or of a backup receive).
 * - POST /api/v1/backups/receive (bearer): pull a copy from a source agent into snapshot.backup_dir.
 * - GET /api/v1/backups[?host=] (bearer): the catalogue of snapshot.backup_dir.
 * - DELETE /api/v1/backups/:host/:dir (bearer): one backup of that catalogue (retention, operators).
 */
export function transferRouter(options: AgentAppOptions): express.Router {
  const { config } = options;
  const log = (options.logger ?? silentLogger).child({ component: 'transfer' });
  const router = express.Router();
  // A copy is pulled only from a peer the agent's own file names (when it names any).
  const refuseUnknownSource = (url: string) => {
    const problem = sourceProblem(config.peers, url);
    if (problem) throw new HttpError(403, 'peer_not_allowed', problem);
  };
  let source: TransferSource | undefined;
  let target: TransferTarget | undefined;
  let store: AgentBackupStore | undefined;
  const peerTls = config.tls
    ? () => {
        const tls = config.tls as NonNullable<typeof config.tls>;
        const ca = tls.peer_ca_file ?? tls.client_ca_file;
        return {
          cert: readFileSync(tls.cert_file),
          key: readFileSync(tls.key_file),
          ...(ca ? { ca: readFileSync(ca) } : {}),
        };
      }
    : undefined;
  const storeOf = () => {
    const dir = config.snapshot?.backup_dir;
    if (!dir)
      throw new HttpError(
        409,
        'not_configured',
        'this agent has no snapshot.backup_dir: it keeps no backups',
      );
    store ??= new AgentBackupStore({ dir, log, ...(peerTls ? { tls: peerTls } : {}) });
    return store;
  };
  const settings = () => {
    const missing = [!config.snapshot && 'snapshot', !config.mysql && 'mysql'].filter(Boolean);
    if (missing.length > 0)
      throw new HttpError(
        409,
        'not_configured',
        `this agent's file has no ${missing.join(' and ')} section; clone and restore need snapshot.path (the datadir) and mysql (how the agent reaches its own server)`,
      );
    return {
      snapshot: config.snapshot as NonNullable<typeof config.snapshot>,
      mysql: config.mysql as NonNullable<typeof config.mysql>,
    };
  };
  const sourceOf = () => {
    const { snapshot, mysql } = settings();
    source ??= new TransferSource({
      datadir: snapshot.path,
      method: snapshot.method,
      server: localServerOf(mysql, config.source),
      snapshotMethod: options.snapshotMethod,
      log,
    });
    return source;
  };
  const targetOf = () => {
    const { snapshot, mysql } = settings();
    if (!snapshot.service)
      throw new HttpError(
        409,
        'not_configured',
        'this agent has no snapshot.service {stop, start}: it cannot stop and start its server to swap in a copy',
      );
    if (!snapshot.replication)
      throw new HttpError(
        409,
        'not_configured',
        'this agent has no snapshot.replication {user, password_file}: a copy swapped in here could not replicate from the writer',
      );
    const passwordFile = agentFilePath(config.source, snapshot.replication.password_file);
    const replicationUser = snapshot.replication.user;
    target ??= new TransferTarget({
      datadir: snapshot.path,
      server: localServerOf(mysql, config.source),
      service: snapshot.service,
      replication: { user: replicationUser, password: () => readPasswordFile(passwordFile) },
      log,
      // Agent to agent over HTTPS like the lease pings: this agent's certificate, peers checked against peer_ca_file or client_ca_file.
      ...(peerTls ? { tls: peerTls } : {}),
    });
    return target;
  };

  router.get(
    '/api/v1/transfers/:id/stream',
    route(async (request, response) => {
      const id = parse(transferId, request.params.id);
      const offer = sourceOf().claim(id, request.get('x-switchyard-transfer-token') ?? '');
      if (offer === 'limited') {
        response.set('retry-after', '10');
        throw new HttpError(
          429,
          'too_many_wrong_tokens',
          'too many wrong transfer tokens; retry later',
        );
      }
      if (offer === 'refused') {
        log.warn(
          { event: 'transfer.token_refused', id, remote: request.socket.remoteAddress },
          'a stream request with a wrong or expired transfer token (the offer stays open)',
        );
        throw new HttpError(
          401,
          'unauthorized',
          `no open offer ${id} for this token (offers are used once and expire after 2 minutes)`,
        );
      }
      log.info(
        {
          event: 'transfer.send',
          id,
          format: offer.format,
          rateLimit: offer.rateLimit,
          remote: request.socket.remoteAddress,
        },
        'sending copy',
      );
      await sourceOf().stream(offer, response);
    }),
  );

  // The pushed copy is the raw request body, so this route is outside the JSON-only router below.
  router.put(
    '/api/v1/transfers/:id/upload',
    requireBearerToken(options.getToken),
    route(async (request, response) => {
      const id = parse(transferId, request.params.id);
      const received = target?.acceptUpload(id, request);
      if (!received)
        throw new HttpError(
          404,
          'not_found',
          `no transfer ${id} into this host is waiting for an upload (POST /api/v1/transfers/receive with upload: true first)`,
        );
      log.info(
        { event: 'transfer.upload', id, remote: request.socket.remoteAddress },
        'receiving pushed copy',
      );
      try {
        await received;
      } catch (error) {
        throw new HttpError(
          422,
          'receive_failed',
          `receiving the copy failed: ${(error as Error).message}`,
        );
      }
      response.json({ id, received: true });
    }),
  );

  const api = express.Router();
  api.use(requireBearerToken(options.getToken));
  api.use(requireJson);
  api.use(bodyDeadline(AGENT_LIMITS.bodyTimeoutMs));
  api.use(express.json({ limit: '16kb', strict: true, type: 'application/json' }));
  api.post(
    '/offers',
    route(async (request, response) => {
      const body = parse(offerBody, request.body);
      let backup;
      try {
        backup = body.backup === undefined ? undefined : storeOf().find(body.backup);
      } catch (error) {
        throw refusal(error);
      }
      const offer = await sourceOf().offer(body.id ?? randomUUID(), body.rate_limit, backup);
      log.info(
        {
          event: 'transfer.offered',
          id: offer.id,
          format: offer.format,
          estimatedBytes: offer.estimatedBytes,
        },
        'copy offered',
      );
      response.status(201).json({
        id: offer.id,
        token: offer.token,
        format: offer.format,
        estimated_bytes: offer.estimatedBytes,
        expires_at: offer.expiresAt,
      });
    }),
  );
  api.post(
    '/receive',
    route(async (request, response) => {
      const body = parse(receiveBody, request.body);
      if (body.source_url !== undefined) refuseUnknownSource(body.source_url);
      try {
        const status = await targetOf().receive({
          id: body.id,
          operation: body.operation,
          source:
            body.source_url !== undefined && body.token !== undefined
              ? { url: body.source_url, token: body.token }
              : undefined,
          estimatedBytes: body.estimated_bytes,
          writer: body.writer,
        });
        response.status(202).json(status);
      } catch (error) {
        if (error instanceof TransferRefused) {
          response.locals.refusal = error.message;
          throw new HttpError(409, error.code, error.message);
        }
        throw error;
      }
    }),
  );
  api.get(
    '/:id',
    route(async (request, response) => {
      const id = parse(transferId, request.params.id);
      const status = target?.status(id) ?? store?.status(id);
      if (!status) throw new HttpError(404, 'not_found', `no transfer ${id} into this host`);
      response.json(status);
    }),
  );
  router.use('/api/v1/transfers', api);

  const backups = express.Router();
  backups.use(requireBearerToken(options.getToken));
  backups.use(requireJson);
  backups.use(bodyDeadline(AGENT_LIMITS.bodyTimeoutMs));
  backups.use(express.json({ limit: '16kb', strict: true, type: 'application/json' }));
  backups.post(
    '/receive',
    route(async (request, response) => {
      const body = parse(backupReceiveBody, request.body);
      refuseUnknownSource(body.source_url);
      try {
        const status = await storeOf().receive({
          id: body.id,
          host: body.host,
          source: { url: body.source_url, token: body.token },
          estimatedBytes: body.estimated_bytes,
        });
        response.status(202).json(status);
      } catch (error) {
        throw refusal(error);
      }
    }),
  );
  // The catalogue of snapshot.backup_dir, for `backup --list` and retention (the manager decides
  // what to prune; this agent only lists and deletes what its own catalogue holds).
  backups.get(
    '/',
    route(async (request, response) => {
      const host = request.query.host;
      if (host !== undefined && typeof host !== 'string')
        throw new HttpError(400, 'malformed', 'give host once');
      const dir = config.snapshot?.backup_dir;
      if (!dir) {
        response.json({ backup_dir: null, backups: [], problems: [] });
        return;
      }
      try {
        const { entries, problems } = storeOf().list(host);
        response.json({ backup_dir: dir, backups: entries, problems });
      } catch (error) {
        throw catalogueRefusal(error);
      }
    }),
  );
  backups.delete(
    '/:host/:name',
    route(async (request, response) => {
      const id = `${String(request.params.host)}/${String(request.params.name)}`;
      const store = storeOf();
      const inUse = source ? store.idsOf(source.storedBackupsInUse()) : new Set<string>();
      try {
        const removed = store.remove(id, inUse);
        response.json({ deleted: removed.id });
      } catch (error) {
        throw catalogueRefusal(error);
      }
    }),
  );
  router.use('/api/v1/backups', backups);
  return router;
}
