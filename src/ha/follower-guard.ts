import express from 'express';
import { WEBHOOK_PATH } from '../receiver/webhook.js';

export interface FollowerGuardOptions {
  /** true while this manager may act (leads, and has taken over the cluster state). */
  leads: () => boolean;
  /** The leader's URL, when known. */
  leaderUrl: () => string | undefined;
  /** A webhook reaching a follower still shows the alerting pipeline alive. */
  notePipelineAlive: () => void;
}

/**
 * Several managers: control commands and webhooks that reach a follower are answered 409
 * `not_leader` with the leader's URL (`leader`), not forwarded: the CLI follows it, and
 * Alertmanager, given every manager as a receiver, reaches the leader too. Reads (GET: status,
 * journal) are answered by every manager. Mounted after authentication, so the leader's address
 * is told only to callers with a token.
 */
export function followerGuard(options: FollowerGuardOptions): express.Router {
  const router = express.Router();
  router.use((request, response, next) => {
    if (request.method === 'GET' || request.method === 'HEAD' || options.leads()) {
      next();
      return;
    }
    if (request.method === 'POST' && request.path === WEBHOOK_PATH) options.notePipelineAlive();
    const leader = options.leaderUrl();
    response.status(409).json({
      error: 'not_leader',
      detail: leader
        ? `this manager is a follower; the leader is ${leader}`
        : 'this manager is a follower and no leader is elected right now: try again shortly',
      ...(leader ? { leader } : {}),
    });
  });
  return router;
}
