import express, { type RequestHandler, type Router } from 'express';
import { analysisRouter } from '../api/analysis-routes.js';
import { sendError } from '../api/errors.js';
import { statusRouter } from '../api/status-routes.js';
import type { AlertDecision, IncomingAlert } from '../engine/types.js';
import type { MetricsSource } from '../exporter/merge.js';
import { mergedMetrics } from '../exporter/merge.js';
import { followerGuard } from '../ha/follower-guard.js';
import { WEBHOOK_PATH, webhookRouter } from '../receiver/webhook.js';
import type { ClusterRuntime } from './cluster-runtime.js';

/** Where the selected cluster's name is kept for the handlers after authentication. */
const SELECTED = 'switchyardCluster';

/** The routes one cluster answers under /api/v1: status, analysis, the follower guard (ha), then the extra routers. */
function clusterRouter(
  cluster: ClusterRuntime,
  extraRouters?: (cluster: ClusterRuntime) => Router[],
): Router {
  const router = express.Router();
  router.use(statusRouter(() => cluster.status()));
  router.use(
    analysisRouter({
      hosts: Object.keys(cluster.config.hosts),
      analysis: (host) => cluster.analysis(host),
    }),
  );
  if (cluster.haEnabled)
    router.use(
      followerGuard({
        leads: () => cluster.leadership.mayAct(),
        leaderUrl: () => cluster.leaderUrl(),
        notePipelineAlive: () => cluster.engine.notePipelineAlive(),
      }),
    );
  for (const extra of extraRouters?.(cluster) ?? []) router.use(extra);
  return router;
}

/**
 * Before authentication: takes the cluster's name out of `/clusters/NAME/...` or `?cluster=NAME`
 * and rewrites the URL to the plain route, so scopes and routes read as for one cluster.
 */
function selectCluster(): RequestHandler {
  return (request, response, next) => {
    const url = new URL(request.url, 'http://switchyard.invalid');
    let name: string | undefined;
    const prefixed = /^\/clusters\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (prefixed) {
      name = decodeURIComponent(prefixed[1] as string);
      url.pathname = prefixed[2] ?? '/';
    }
    const named = url.searchParams.getAll('cluster');
    if (named.length > 1 || (named.length === 1 && name !== undefined && named[0] !== name)) {
      sendError(response, 400, 'malformed', 'name one cluster, in the path or in ?cluster=');
      return;
    }
    if (named.length === 1) {
      name = named[0];
      url.searchParams.delete('cluster');
    }
    if (name !== undefined) {
      response.locals[SELECTED] = name;
      request.url = `${url.pathname}${url.search}`;
    }
    next();
  };
}

/**
 * An Alertmanager webhook that names no cluster, on a manager with several: each alert goes to
 * the cluster its `cluster` label names. One without a known cluster label (a Watchdog) acts
 * nowhere but still shows every cluster's alerting pipeline alive.
 */
function fleetAlerts(
  clusters: ClusterRuntime[],
): (alerts: IncomingAlert[]) => Promise<AlertDecision[]> {
  return async (alerts) => {
    const decisions: AlertDecision[] = [];
    const byCluster = new Map<ClusterRuntime, IncomingAlert[]>();
    for (const alert of alerts) {
      const cluster = clusters.find((candidate) => candidate.name === alert.labels.cluster);
      if (!cluster) {
        decisions.push({
          alert: alert.name,
          status: alert.status,
          host: alert.labels.host,
          decision: 'ignored',
          reason: `no cluster of this manager is named by its cluster label (${clusters.map((candidate) => candidate.name).join(', ')})`,
        });
        continue;
      }
      byCluster.set(cluster, [...(byCluster.get(cluster) ?? []), alert]);
    }
    for (const cluster of clusters) {
      const own = byCluster.get(cluster);
      if (!own) {
        cluster.engine.notePipelineAlive();
        continue;
      }
      if (cluster.haEnabled && !cluster.leadership.mayAct()) {
        // Alertmanager, given every manager as a receiver, reaches this cluster's leader too.
        cluster.engine.notePipelineAlive();
        for (const alert of own)
          decisions.push({
            alert: alert.name,
            status: alert.status,
            host: alert.labels.host,
            decision: 'ignored',
            reason: `this manager follows for cluster ${cluster.name}; the leader is ${cluster.leaderUrl() ?? 'not elected yet'}`,
          });
        continue;
      }
      decisions.push(...(await cluster.engine.handleAlerts(own)));
    }
    return decisions;
  };
}

/**
 * The /api/v1 routes of every cluster behind one listener. With one cluster, naming it is
 * optional (every existing client keeps working); with several, a request that names none is
 * refused with the names, except the webhook, which routes alerts by their `cluster` label.
 * GET /api/v1/clusters lists the names (read scope).
 */
export function clusterApi(
  clusters: ClusterRuntime[],
  extraRouters?: (cluster: ClusterRuntime) => Router[],
): { apiRouters: Router[]; apiBeforeAuth: RequestHandler[] } {
  const routers = new Map(
    clusters.map((cluster) => [cluster.name, clusterRouter(cluster, extraRouters)]),
  );
  const names = clusters.map((cluster) => cluster.name);
  const fleetWebhook = webhookRouter({
    engine: { handleAlerts: fleetAlerts(clusters) },
    log: (clusters[0] as ClusterRuntime).options.log.child({ component: 'api' }),
  });
  const dispatch = express.Router();
  dispatch.get('/clusters', (_request, response) => {
    response.json({ clusters: names });
  });
  dispatch.use((request, response, next) => {
    const name = response.locals[SELECTED] as string | undefined;
    if (name === undefined && clusters.length === 1) {
      (routers.get(names[0] as string) as Router)(request, response, next);
      return;
    }
    if (name === undefined) {
      if (request.method === 'POST' && request.path === WEBHOOK_PATH) {
        fleetWebhook(request, response, next);
        return;
      }
      sendError(
        response,
        400,
        'cluster_required',
        `this manager runs ${names.length} clusters (${names.join(', ')}): name one with /api/v1/clusters/NAME/... or ?cluster=NAME (CLI: --cluster NAME)`,
      );
      return;
    }
    const router = routers.get(name);
    if (!router) {
      sendError(
        response,
        404,
        'not_found',
        `no cluster "${name}" here (clusters: ${names.join(', ')})`,
      );
      return;
    }
    router(request, response, next);
  });
  return { apiRouters: [dispatch], apiBeforeAuth: [selectCluster()] };
}

/** /metrics for every cluster of the process: one exposition, each series with its `cluster`. */
export function clusterMetrics(clusters: ClusterRuntime[]): MetricsSource {
  if (clusters.length === 1) return (clusters[0] as ClusterRuntime).metrics;
  return mergedMetrics(clusters.map((cluster) => cluster.metrics));
}

/** switchyard_webhook_requests_total: counted on the cluster a webhook names, or on every cluster when it names none. */
export function countFleetWebhookRequests(clusters: ClusterRuntime[]): RequestHandler {
  return (request, response, next) => {
    const path = new URL(request.url, 'http://switchyard.invalid').pathname;
    const match = /^\/api\/v1(?:\/clusters\/([^/]+))?\/alerts$/.exec(path);
    if (request.method === 'POST' && match) {
      const named = match[1]
        ? decodeURIComponent(match[1])
        : new URL(request.url, 'http://switchyard.invalid').searchParams.get('cluster');
      const counted =
        named === null || named === undefined
          ? clusters
          : clusters.filter((cluster) => cluster.name === named);
      response.on('finish', () => {
        for (const cluster of counted)
          cluster.metrics.webhookRequestsTotal.inc({ code: String(response.statusCode) });
      });
    }
    next();
  };
}
