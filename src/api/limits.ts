import type { RequestHandler } from 'express';
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
  /** Open sockets; node closes further connections at once. */
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** How often node checks the two timeouts above (its default, 30 s, would make them coarse). */
  checkIntervalMs: number;
}

export const MANAGER_LIMITS: ServerLimits = {
  maxInFlight: 64,
  maxConnections: 512,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 20_000,
  keepAliveTimeoutMs: 5000,
  checkIntervalMs: 1000,
};
export const AGENT_LIMITS: ServerLimits = {
  ...MANAGER_LIMITS,
  maxInFlight: 16,
  maxConnections: 128,
};

/** Answers 503 {error: "busy"} with Retry-After when `max` requests are already being handled. */
export function inFlightLimit(max: number): RequestHandler {
  let inFlight = 0;
  return (_request, response, next) => {
    if (inFlight >= max) {
      response.set('retry-after', '1');
      sendError(response, 503, 'busy', `${max} requests are already being handled; retry shortly`);
      return;
    }
    inFlight++;
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      inFlight--;
    };
    response.on('finish', release);
    response.on('close', release);
    next();
  };
}
