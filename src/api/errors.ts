import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';
import { formatPath } from '../config/problems.js';

/** Errors are JSON {error, detail} with the status codes of docs/design.md. */
export function sendError(response: Response, status: number, error: string, detail: string): void {
  response.status(status).json({ error, detail });
}

/** A request body that failed its schema: 400 with every problem and its key path, nothing done. */
export function sendMalformed(response: Response, error: z.ZodError): void {
  sendError(
    response,
    400,
    'malformed',
    error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`).join('; '),
  );
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
  }
}

/** Encodings a body may arrive in; anything else (br, zstd, garbage) is 415, not a parse error. */
const BODY_ENCODINGS = new Set(['identity', 'gzip', 'deflate']);

/** Requires a JSON body on methods that carry one: 415 otherwise. */
export function requireJson(request: Request, response: Response, next: NextFunction): void {
  const encoding = request.headers['content-encoding'];
  if (encoding !== undefined && !BODY_ENCODINGS.has(encoding.trim().toLowerCase())) {
    sendError(
      response,
      415,
      'unsupported_media_type',
      'send the body uncompressed (Content-Encoding identity, gzip or deflate only)',
    );
    return;
  }
  if (
    ['POST', 'PUT', 'PATCH'].includes(request.method) &&
    request.headers['content-length'] !== '0' &&
    !request.is('application/json')
  ) {
    sendError(response, 415, 'unsupported_media_type', 'send the body as application/json');
    return;
  }
  next();
}

/** Final handler: body-parser errors become 400/413, HttpErrors keep their status, the rest is 500. */
export function errorHandler(
  error: unknown,
  _request: Request,
  response: Response,
  _next: NextFunction,
): void {
  // The body deadline answers 408 and the body parser then fails on the cut stream: the client
  // has its answer already, and a second one would only throw.
  if (response.headersSent) return;
  if (error instanceof HttpError) {
    sendError(response, error.status, error.code, error.message);
    return;
  }
  const typed = error as { type?: string; status?: number; message?: string };
  if (typed.type === 'entity.too.large') {
    sendError(response, 413, 'payload_too_large', 'the request body is larger than the limit');
    return;
  }
  if (typed.type === 'entity.parse.failed') {
    sendError(response, 400, 'malformed', `the body is not valid JSON: ${typed.message ?? ''}`);
    return;
  }
  if (typeof typed.status === 'number' && typed.status >= 400 && typed.status < 500) {
    sendError(response, typed.status, 'bad_request', typed.message ?? 'bad request');
    return;
  }
  sendError(response, 500, 'internal', (error as Error)?.message ?? 'internal error');
}
