import type { Router } from 'express';
import { backupRouter } from '../api/backup-routes.js';
import { rejoinHost, rejoinRouter } from '../api/rejoin-routes.js';
import { transferRouter, type TransferJob } from '../api/transfer-routes.js';
import { RemoteBackups } from '../transfer/remote-backup.js';
import { Reseeder } from '../transfer/reseed.js';
import { AutoRejoin } from './auto-rejoin.js';
import type { Daemon } from './daemon.js';

/** Clone, rejoin, backup and restore through the agents: one Reseeder per daemon, so two transfers into one host are refused. */
export function transferRouters(daemon: Daemon): Router[] {
  const log = daemon.options.log.child({ component: 'transfer' });
  const reseeder = new Reseeder(daemon.config, {
    journal: daemon.journal,
    metrics: daemon.metrics,
    logger: log,
  });
  const catalogues = daemon.backupCatalogues;
  const backups = new RemoteBackups(
    daemon.config,
    reseeder,
    { journal: daemon.journal, metrics: daemon.metrics, logger: log },
    catalogues,
  );
  catalogues.busy = () => backups.backupsInUse();
  const jobs = new Map<string, TransferJob>();
  daemon.settleBeforeStop.push(() =>
    Promise.allSettled(
      [...jobs.values()].flatMap((job) => (!job.done && job.settled ? [job.settled] : [])),
    ),
  );
  const deps = { config: daemon.config, reseeder, state: () => daemon.engine.snapshot(), jobs };
  const rejoinDeps = { ...deps, engine: daemon.engine, journal: daemon.journal };
  if (daemon.config.monitor.auto_rejoin) {
    const auto = new AutoRejoin({
      config: daemon.config,
      journal: daemon.journal,
      metrics: daemon.metrics,
      log: daemon.options.log.child({ component: 'auto-rejoin' }),
      mayAct: () => daemon.leadership.mayAct(),
      inMaintenance: (host) => daemon.engine.inMaintenance(host),
      rejoin: (host) => rejoinHost(rejoinDeps, host, { discardErrant: true }),
      jobs,
    });
    daemon.afterCycle.push((cycle) => auto.consider(cycle.state, cycle.observations));
    daemon.autoRejoinReport = () => auto.last;
  }
  return [
    transferRouter(deps),
    rejoinRouter(rejoinDeps),
    backupRouter({ ...deps, backups, catalogues }),
  ];
}
