import express from 'express';
import type { AlertDecision, ControlPlane } from '../engine/types.js';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Logger } from '../log.js';
import { parseWebhook, toIncomingAlerts } from './payload.js';
import { ReplayGuard } from './replay-guard.js';

export const WEBHOOK_PATH = '/alerts';
const WATCHDOG = 'Watchdog';

/**
 * POST /api/v1/alerts: validates, drops replays, tells the engine the pipeline is alive, and
 * hands the rest to the engine, which re-checks live state before it acts. The receiver itself
 * decides nothing about the cluster.
 */
export function webhookRouter(deps: { engine: ControlPlane; log: Logger; guard?: ReplayGuard }): express.Router {
  const guard = deps.guard ?? new ReplayGuard();
  const router = express.Router();
  router.post(WEBHOOK_PATH, async (request, response, next) => {
    try {
      const { payload, problems } = parseWebhook(request.body);
      if (!payload) {
        deps.log.warn({ event: 'webhook.rejected', problems }, 'malformed webhook');
        response.status(400).json({ error: 'malformed', detail: problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ') });
        return;
      }
      deps.engine.notePipelineAlive();
      const alerts = toIncomingAlerts(payload);
      const decisions: Array<AlertDecision | undefined> = alerts.map(() => undefined);
      const forEngine: Array<{ index: number; key: string }> = [];
      alerts.forEach((alert, index) => {
        const base = { alert: alert.name, status: alert.status, host: alert.labels.host, role: alert.labels.role };
        if (alert.name === WATCHDOG) {
          decisions[index] = { ...base, decision: 'ignored', reason: 'watchdog: the alerting pipeline is alive' };
          return;
        }
        const key = ReplayGuard.key(alert);
        const handled = guard.handledAt(key);
        if (handled !== undefined) {
          decisions[index] = { ...base, decision: 'ignored', reason: `duplicate: already handled at ${new Date(handled).toISOString()}` };
          return;
        }
        forEngine.push({ index, key });
      });
      if (forEngine.length > 0) {
        const engineDecisions = await deps.engine.handleAlerts(forEngine.map(({ index }) => alerts[index] as (typeof alerts)[number]));
        forEngine.forEach(({ index, key }, position) => {
          decisions[index] = engineDecisions[position];
          // Only what changed (or would change) the cluster is remembered: a refused, deferred,
          // ignored or failed alert is evaluated afresh when Alertmanager sends it again.
          const decision = engineDecisions[position]?.decision;
          if (decision === 'acted' || decision === 'planned') guard.remember(key);
        });
      }
      const answered: AlertDecision[] = decisions.map(
        (decision, index) => decision ?? { alert: alerts[index]?.name ?? '?', status: alerts[index]?.status ?? 'firing', decision: 'failed', reason: 'no decision returned' },
      );
      deps.log.info({ event: 'webhook.received', alerts: alerts.length, groupKey: payload.groupKey, decisions: answered.map((decision) => `${decision.alert}/${decision.host ?? '-'}: ${decision.decision}`) }, 'webhook handled');
      response.json({ received: alerts.length, decisions: answered });
    } catch (error) {
      next(error);
    }
  });
  return router;
}

/** Counts every request to the webhook by its final status, rejected ones included. */
export function countWebhookRequests(metrics: SwitchyardMetrics): express.RequestHandler {
  return (request, response, next) => {
    if (request.method === 'POST' && request.path === `/api/v1${WEBHOOK_PATH}`) {
      response.on('finish', () => metrics.webhookRequestsTotal.inc({ code: String(response.statusCode) }));
    }
    next();
  };
}
