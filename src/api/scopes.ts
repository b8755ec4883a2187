import type { NextFunction, Request, Response } from 'express';
import type { Config, Scope } from '../config/schema.js';
import { readSecret, type SecretSource } from '../config/secrets.js';
import { runAs } from '../journal/actor.js';
import { presentedToken, tokenMatches } from './auth.js';
import { sendError } from './errors.js';

/** A configured API token: where its value comes from and what it may do. */
export interface TokenSpec {
  name: string;
  source: SecretSource;
  scopes: Scope[];
}

/** A token whose value was presented: the request's principal. */
export interface Principal {
  name: string;
  scopes: Scope[];
}

/** auth.token_file/token_env is one admin token named "admin"; auth.tokens adds named, scoped ones. */
export function tokenSpecs(auth: Config['auth']): TokenSpec[] {
  const specs: TokenSpec[] = [];
  if (auth.token_file !== undefined || auth.token_env !== undefined)
    specs.push({
      name: 'admin',
      source: { file: auth.token_file, env: auth.token_env },
      scopes: ['admin'],
    });
  for (const token of auth.tokens ?? [])
    specs.push({
      name: token.name,
      source: { file: token.file, env: token.env },
      scopes: token.scopes,
    });
  return specs;
}

/** operate includes read; admin includes everything. alerts is only alerts. */
export function grants(scopes: readonly Scope[], needed: Scope): boolean {
  if (scopes.includes('admin') || scopes.includes(needed)) return true;
  return needed === 'read' && scopes.includes('operate');
}

/**
 * The scope each endpoint needs (paths relative to /api/v1). Anything not listed needs admin,
 * so an endpoint added later (clone, backup, restore, rejoin) is admin-only until it is listed.
 */
export function scopeFor(method: string, path: string): Scope {
  const route = `${method.toUpperCase()} ${path.replace(/\/+$/, '')}`;
  if (route === 'POST /alerts') return 'alerts';
  // Transfer jobs show hosts, byte counts and outcomes, nothing more than the journal does.
  // The backup catalogue: ids, times, sizes and GTIDs, no data.
  if (/^GET \/(clusters|status|checks|analysis|journal|backups|transfers(\/[^/]+)?)$/.test(route))
    return 'read';
  if (
    /^POST \/hosts\/[^/]+\/(online|offline)$/.test(route) ||
    /^POST \/roles\/[^/]+\/move$/.test(route) ||
    route === 'PUT /mode'
  )
    return 'operate';
  return 'admin';
}

/**
 * Finds the token presented. Every configured token is compared (in constant time each), with
 * no early exit, so the answer time does not tell which token came close.
 */
export function authenticate(
  presented: string,
  specs: readonly TokenSpec[],
): { principal?: Principal; unreadable: string[] } {
  let principal: Principal | undefined;
  const unreadable: string[] = [];
  for (const spec of specs) {
    let expected: string;
    try {
      expected = readSecret(spec.source, `auth token "${spec.name}"`);
    } catch {
      unreadable.push(spec.name);
      continue;
    }
    if (tokenMatches(presented, expected) && principal === undefined)
      principal = { name: spec.name, scopes: spec.scopes };
  }
  return { principal, unreadable };
}

/**
 * Bearer-token authentication against the configured tokens (read per request, so a rotated
 * file applies at once), then the route's scope: 401 without a valid token, 403 with the scope
 * it needs. The principal is kept in response.locals.principal.
 */
export function requireScopedToken(
  getSpecs: () => TokenSpec[],
  needed: (request: Request) => Scope,
) {
  return (request: Request, response: Response, next: NextFunction): void => {
    const presented = presentedToken(request, response);
    if (presented === undefined) return;
    const specs = getSpecs();
    const { principal, unreadable } = authenticate(presented, specs);
    if (!principal) {
      if (unreadable.length === specs.length)
        sendError(response, 500, 'internal', 'the server cannot read its own tokens');
      else sendError(response, 401, 'unauthorized', 'the bearer token is not valid');
      return;
    }
    const scope = needed(request);
    if (!grants(principal.scopes, scope)) {
      sendError(
        response,
        403,
        'forbidden',
        `needs scope ${scope} (token "${principal.name}" has ${principal.scopes.join(', ')})`,
      );
      return;
    }
    response.locals.principal = principal;
    next();
  };
}

/**
 * Runs the rest of the request as its token's name, so every journal entry it causes names the
 * token. Mount it after the body parser: a stream callback would not carry the context along.
 */
export function actAsPrincipal(_request: Request, response: Response, next: NextFunction): void {
  const principal = response.locals.principal as Principal | undefined;
  if (principal) runAs(principal.name, next);
  else next();
}
