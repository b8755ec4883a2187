import type { Router } from 'express';
import { controlRouter } from '../api/control-routes.js';
import { webhookRouter } from '../receiver/webhook.js';
import type { ClusterRuntime } from './cluster-runtime.js';
import { transferRouters } from './transfer-routers.js';

/** One cluster's webhook receiver and control API, mounted under /api/v1 (or /api/v1/clusters/NAME) next to its status routes. */
export function daemonRouters(cluster: ClusterRuntime): Router[] {
  const log = cluster.options.log.child({ component: 'api' });
  return [
    webhookRouter({ engine: cluster.engine, log }),
    controlRouter({ config: cluster.config, engine: cluster.engine, journal: cluster.journal }),
    ...transferRouters(cluster),
  ];
}
