import express from 'express';
import type { AlertDecision, ControlPlane } from '../engine/types.js';
import type { Logger } from '../log.js';
import { cut } from '../journal/bound.js';
import { parseWebhook, toIncomingAlerts } from './payload.js';

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

export const WEBHOOK_PATH = '/alerts';

/**
 * POST /api/v1/alerts: validates and hands every alert to the engine, which notes the pipeline
 * alive, drops resends of what it already acted on, and re-checks live state before it acts.
 * The receiver itself decides nothing about the cluster.
 */
export function webhookRouter(deps: {
  engine: Pick<ControlPlane, 'handleAlerts'>;
  log: Logger;
}): express.Router {
  const router = express.Router();
  router.post(WEBHOOK_PATH, async (request, response, next) => {
    try {
      const { payload, problems } = parseWebhook(request.body);
      if (!payload) {
        deps.log.warn({ event: 'webhook.rejected', problems }, 'malformed webhook');
        response.status(400).json({
          error: 'malformed',
          detail: problems.map((problem) => `${problem.path}: ${problem.message}`).join('; '),
        });
        return;
      }
      const alerts = toIncomingAlerts(payload);
      const decisions: AlertDecision[] = await deps.engine.handleAlerts(alerts);
      deps.log.info(
        {
          event: 'webhook.received',
          alerts: alerts.length,
          groupKey: payload.groupKey,
          // Counted, and the first few named (label text cut): a 1000-alert payload must not
          // become a megabyte log line.
          counts: countBy(decisions.map((decision) => decision.decision)),
          decisions: decisions
            .slice(0, 20)
            .map(
              (decision) =>
                `${cut(decision.alert, 64)}/${cut(decision.host ?? '-', 64)}: ${decision.decision}`,
            ),
        },
        'webhook handled',
      );
      response.json({ received: alerts.length, decisions });
    } catch (error) {
      next(error);
    }
  });
  return router;
}
