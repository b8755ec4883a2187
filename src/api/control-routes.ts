import express from 'express';
import { z } from 'zod';
import type { LoadedConfig } from '../config/load.js';
import { MODES } from '../config/schema.js';
import type { ControlPlane, OperationResult } from '../engine/types.js';
import type { Journal } from '../journal/journal.js';
import { sendMalformed } from './errors.js';
import { decimalQuery, onlyKnownQuery } from './query.js';
import { isOwnName } from '../domain/own.js';

const moveBody = z.strictObject({ host: z.string().min(1), force: z.boolean().default(false) });
const onlineBody = z.strictObject({ accept_errant: z.boolean().default(false) });
const modeBody = z.strictObject({ mode: z.enum(MODES), reason: z.string().max(500).optional() });

/** OperationResult -> HTTP: refusals by an invariant are 409 with the reason. */
function send(response: express.Response, result: OperationResult): void {
  const errant = result.errant ? { errant: result.errant } : {};
  if (result.ok) {
    response.json({ ok: true, detail: result.detail, steps: result.steps ?? [], ...errant });
    return;
  }
  const status = { refused: 409, not_found: 404, bad_request: 400, failed: 500 }[
    result.code ?? 'failed'
  ];
  response.status(status).json({
    error: result.code ?? 'failed',
    detail: result.detail,
    steps: result.steps ?? [],
    ...errant,
  });
}

/** Operator actions of docs/design.md "HTTP endpoints", all journaled by the engine. */
export function controlRouter(deps: {
  config: LoadedConfig;
  engine: ControlPlane;
  journal: Journal;
}): express.Router {
  const { config, engine, journal } = deps;
  const router = express.Router();
  const knownHost = (host: string, response: express.Response) => {
    if (isOwnName(config.hosts, host)) return true;
    response.status(404).json({ error: 'not_found', detail: `unknown host "${host}"` });
    return false;
  };
  const wrap =
    (
      handler: (request: express.Request, response: express.Response) => Promise<void>,
    ): express.RequestHandler =>
    (request, response, next) => {
      handler(request, response).catch(next);
    };

  router.post(
    '/hosts/:host/online',
    wrap(async (request, response) => {
      const host = String(request.params.host);
      const body = onlineBody.safeParse(request.body ?? {});
      if (!body.success) return sendMalformed(response, body.error);
      if (knownHost(host, response))
        send(response, await engine.setOnline(host, { acceptErrant: body.data.accept_errant }));
    }),
  );
  router.post(
    '/hosts/:host/offline',
    wrap(async (request, response) => {
      const host = String(request.params.host);
      if (knownHost(host, response)) send(response, await engine.setOffline(host));
    }),
  );
  router.post(
    '/roles/:role/move',
    wrap(async (request, response) => {
      const role = String(request.params.role);
      if (!isOwnName(config.roles, role)) {
        response.status(404).json({ error: 'not_found', detail: `unknown role "${role}"` });
        return;
      }
      const body = moveBody.safeParse(request.body ?? {});
      if (!body.success) return sendMalformed(response, body.error);
      if (!knownHost(body.data.host, response)) return;
      send(response, await engine.moveRole(role, body.data.host, { force: body.data.force }));
    }),
  );
  router.put(
    '/mode',
    wrap(async (request, response) => {
      const body = modeBody.safeParse(request.body ?? {});
      if (!body.success) return sendMalformed(response, body.error);
      send(
        response,
        await engine.setMode(
          body.data.mode,
          body.data.reason ?? 'set by the operator through the API',
        ),
      );
    }),
  );
  router.get('/journal', (request, response) => {
    if (!onlyKnownQuery(request, response, ['since', 'limit'])) return;
    // Decimal digits only: Number() would read "" as 0 and "0x10" as 16, and an array
    // (?since[]=1) is not a number at all.
    const since = decimalQuery(request.query.since);
    const limit = request.query.limit === undefined ? 200 : decimalQuery(request.query.limit);
    if (
      Number.isNaN(since) ||
      limit === undefined ||
      Number.isNaN(limit) ||
      limit < 1 ||
      limit > 10_000
    ) {
      response.status(400).json({
        error: 'malformed',
        detail: 'since must be epoch milliseconds and limit a whole number from 1 to 10000',
      });
      return;
    }
    response.json({ entries: journal.read({ since, limit }) });
  });
  return router;
}
