import type { Router } from 'express';
import { rejoinRouter } from '../api/rejoin-routes.js';
import { transferRouter, type TransferJob } from '../api/transfer-routes.js';
import { Reseeder } from '../transfer/reseed.js';
import type { Daemon } from './daemon.js';

/** Clone and rejoin through the agents: one Reseeder per daemon, so two transfers into one host are refused. */
export function transferRouters(daemon: Daemon): Router[] {
  const log = daemon.options.log.child({ component: 'transfer' });
  const reseeder = new Reseeder(daemon.config, {
    journal: daemon.journal,
    metrics: daemon.metrics,
    logger: log,
  });
  const jobs = new Map<string, TransferJob>();
  const deps = { config: daemon.config, reseeder, state: () => daemon.engine.snapshot(), jobs };
  return [
    transferRouter(deps),
    rejoinRouter({ ...deps, engine: daemon.engine, journal: daemon.journal }),
  ];
}
