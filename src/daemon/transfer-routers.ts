import type { Router } from 'express';
import { backupRouter } from '../api/backup-routes.js';
import { rejoinRouter } from '../api/rejoin-routes.js';
import { transferRouter, type TransferJob } from '../api/transfer-routes.js';
import { RemoteBackups } from '../transfer/remote-backup.js';
import { Reseeder } from '../transfer/reseed.js';
import type { Daemon } from './daemon.js';

/** Clone, rejoin, backup and restore through the agents: one Reseeder per daemon, so two transfers into one host are refused. */
export function transferRouters(daemon: Daemon): Router[] {
  const log = daemon.options.log.child({ component: 'transfer' });
  const reseeder = new Reseeder(daemon.config, {
    journal: daemon.journal,
    metrics: daemon.metrics,
    logger: log,
  });
  const backups = new RemoteBackups(daemon.config, reseeder, {
    journal: daemon.journal,
    metrics: daemon.metrics,
    logger: log,
  });
  const jobs = new Map<string, TransferJob>();
  const deps = { config: daemon.config, reseeder, state: () => daemon.engine.snapshot(), jobs };
  return [
    transferRouter(deps),
    rejoinRouter({ ...deps, engine: daemon.engine, journal: daemon.journal }),
    backupRouter({ ...deps, backups }),
  ];
}
