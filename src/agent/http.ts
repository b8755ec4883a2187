import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { z } from 'zod';
import { HttpError } from '../api/errors.js';
import type { Logger } from '../log.js';
import { HEALTH_PATHS } from './health.js';
import type { SequenceGuard } from './mutex.js';

/** A request body checked against its schema; 400 naming every problem when it does not fit. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
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

/** An async handler whose failure reaches the error handler. */
export const route =
  (handler: Handler) => (request: Request, response: Response, next: NextFunction) => {
    handler(request, response).catch(next);
  };

/** Refuses a request: the reason goes into the request log, the client gets `{error, detail}`. */
export type Refuse = (response: Response, status: number, code: string, detail: string) => never;

export function refuser(log: Logger, sequence: SequenceGuard): Refuse {
  return (response, status, code, detail) => {
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
}

/**
 * Logs every request with its outcome and, when refused, the reason. The manager's exchange and
 * the lease's pings are routine (debug), and so are the health endpoints, which routers poll.
 */
export function requestLog(log: Logger): RequestHandler {
  return (request, response, next) => {
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
  };
}
