import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { sendError } from './errors.js';

/**
 * Bearer-token check in constant time. Both sides are hashed first so the comparison takes the
 * same time whatever the length of the presented token.
 */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && presented.length === expected.length;
}

/** The request's bearer token; without one, answers 401 and returns undefined. */
export function presentedToken(request: Request, response: Response): string | undefined {
  const header = request.get('authorization');
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (match) return match[1] as string;
  sendError(response, 401, 'unauthorized', 'an Authorization: Bearer <token> header is required');
  return undefined;
}

/** `getToken` is called per request so a rotated token file takes effect without a restart. */
export function requireBearerToken(getToken: () => string) {
  return (request: Request, response: Response, next: NextFunction): void => {
    const presented = presentedToken(request, response);
    if (presented === undefined) return;
    let expected: string;
    try {
      expected = getToken();
    } catch {
      sendError(response, 500, 'internal', 'the server cannot read its own token');
      return;
    }
    if (!tokenMatches(presented, expected)) {
      sendError(response, 401, 'unauthorized', 'the bearer token is not valid');
      return;
    }
    next();
  };
}
