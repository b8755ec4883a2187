import type { Router } from 'express';
import { controlRouter } from '../api/control-routes.js';
import { webhookRouter } from '../receiver/webhook.js';
import type { Daemon } from './daemon.js';
import { transferRouters } from './transfer-routers.js';

/** The webhook receiver and control API, mounted under /api/v1 next to the status routes. */
export function daemonRouters(daemon: Daemon): Router[] {
  const log = daemon.options.log.child({ component: 'api' });
  return [
    webhookRouter({ engine: daemon.engine, log }),
    controlRouter({ config: daemon.config, engine: daemon.engine, journal: daemon.journal }),
    ...transferRouters(daemon),
  ];
}
