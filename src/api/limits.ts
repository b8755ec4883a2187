import type { RequestHandler, Response } from 'express';
import { normalAddress } from '../net/admission.js';
import { sendError } from './errors.js';

/**
 * Bounds on what one client can hold of a server (manager or agent): requests being handled at
 * once, and how long a client may take to send its headers and its whole request (a slow or
 * stalled client is cut off instead of holding a socket). Handlers themselves are bounded by the
 * operations they run (catchup_timeout, agent_timeout, connect timeouts).
 */
export interface ServerLimits {
  /** Requests handled at once; more are answered 503 at once. */
  maxInFlight: number;
  /** Requests handled at once for one client address. */
  perClientInFlight: number;
  /** Requests handled at once for one API token (its configured name). */
  perTokenInFlight: number;
  /** Sockets from sources outside the reserve (see src/net/admission.ts). */
  maxConnections: number;
  /** Sockets from one address. */
  perClientConnections: number;
  /** Extra sockets only trusted sources (peers, recently authenticated addresses) may use. */
  reservedConnections: number;
  /** Of those, what one trusted address may hold (priority sources are not counted). */
  reservedPerClientConnections: number;
  /** Extra sockets only priority sources (peers, the current manager) may use. */
  priorityReservedConnections: number;
  /** With TLS: sockets still in their handshake, and how long a handshake may take. */
  preAuthConnections: number;
  handshakeTimeoutMs: number;
  /**
   * From accepting a socket (or the end of the previous response) to the complete headers: also
   * how long a connection that sends nothing stays open.
   */
  headersTimeoutMs: number;
  /** From the headers to the complete body of a JSON request (the body deadline). */
  bodyTimeoutMs: number;
  /** Node's bound on receiving a whole request (streamed uploads included). */
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** How often node checks the two timeouts above (its default, 30 s, would make them coarse). */
  checkIntervalMs: number;
}

export const MANAGER_LIMITS: ServerLimits = {
  maxInFlight: 64,
  perClientInFlight: 16,
  perTokenInFlight: 16,
  maxConnections: 512,
  perClientConnections: 64,
  reservedConnections: 0, // the manager names no trusted sources
  reservedPerClientConnections: 0,
  priorityReservedConnections: 0,
  preAuthConnections: 64,
  handshakeTimeoutMs: 3000,
  headersTimeoutMs: 2000,
  bodyTimeoutMs: 5000,
  requestTimeoutMs: 20_000,
  keepAliveTimeoutMs: 5000,
  checkIntervalMs: 500,
};
export const AGENT_LIMITS: ServerLimits = {
  ...MANAGER_LIMITS,
  maxInFlight: 16,
  perClientInFlight: 8,
  perTokenInFlight: 16,
  maxConnections: 128,
  perClientConnections: 16,
  reservedConnections: 32,
  reservedPerClientConnections: 4,
  priorityReservedConnections: 16,
  preAuthConnections: 16,
  // Idle keep-alive sockets go after 2 s (the manager's client reuses them within 1 s).
  keepAliveTimeoutMs: 2000,
};

/**
 * The agent's optional `health_listen`: only two cheap GETs, polled by every router (one HAProxy
 * per application host is common), with no token and no body.
 */
export const HEALTH_LIMITS: ServerLimits = {
  ...AGENT_LIMITS,
  maxConnections: 256,
  perClientConnections: 16,
  reservedConnections: 0,
  priorityReservedConnections: 0,
  bodyTimeoutMs: 1000,
};

function busy(response: Response, detail: string): void {
  response.set('retry-after', '1');
  sendError(response, 503, 'busy', detail);
}

/** Releases once, when the response finished or the connection closed. */
function onDone(response: Response, release: () => void): void {
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    release();
  };
  response.on('finish', once);
  response.on('close', once);
}

/**
 * Answers 503 {error: "busy"} with Retry-After when `max` requests are already being handled, or
 * `perClient` from the same address: one client (slow bodies, stalled handlers) cannot take every
 * slot. Health and metrics are mounted before it and never wait for a slot.
 */
export function inFlightLimit(max: number, perClient = max): RequestHandler {
  let inFlight = 0;
  const byClient = new Map<string, number>();
  return (request, response, next) => {
    const client = normalAddress(request.socket.remoteAddress);
    const fromClient = byClient.get(client) ?? 0;
    if (inFlight >= max) {
      busy(response, `${max} requests are already being handled; retry shortly`);
      return;
    }
    if (fromClient >= perClient) {
      busy(response, `${perClient} requests from this address are already being handled`);
      return;
    }
    inFlight++;
    byClient.set(client, fromClient + 1);
    onDone(response, () => {
      inFlight--;
      const left = (byClient.get(client) ?? 1) - 1;
      if (left <= 0) byClient.delete(client);
      else byClient.set(client, left);
    });
    next();
  };
}

/** After authentication: at most `max` requests in flight per token (`response.locals.principal`). */
export function perTokenLimit(max: number): RequestHandler {
  const byToken = new Map<string, number>();
  return (_request, response, next) => {
    const name = (response.locals.principal as { name?: string } | undefined)?.name;
    if (name === undefined) return next();
    const current = byToken.get(name) ?? 0;
    if (current >= max) {
      busy(response, `${max} requests with token "${name}" are already being handled`);
      return;
    }
    byToken.set(name, current + 1);
    onDone(response, () => {
      const left = (byToken.get(name) ?? 1) - 1;
      if (left <= 0) byToken.delete(name);
      else byToken.set(name, left);
    });
    next();
  };
}

/**
 * The body deadline: a request whose body has not fully arrived `ms` after its headers is
 * answered 408 and its connection closed, so a client trickling a declared body holds its slot
 * for seconds, not for node's whole request timeout. Requests without a body are complete at once.
 */
export function bodyDeadline(ms: number): RequestHandler {
  return (request, response, next) => {
    if (request.complete) return next();
    const timer = setTimeout(() => {
      if (request.complete || response.headersSent) return;
      response.set('connection', 'close');
      sendError(
        response,
        408,
        'request_timeout',
        `the request body did not arrive within ${ms} ms`,
      );
      response.on('finish', () => request.socket.destroy());
    }, ms);
    timer.unref();
    onDone(response, () => clearTimeout(timer));
    next();
  };
}
