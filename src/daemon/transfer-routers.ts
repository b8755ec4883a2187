import type { Router } from 'express';
import { backupRouter } from '../api/backup-routes.js';
import { rejoinHost, rejoinRouter } from '../api/rejoin-routes.js';
import { transferRouter, type TransferJob } from '../api/transfer-routes.js';
import { RemoteBackups } from '../transfer/remote-backup.js';
import { Reseeder } from '../transfer/reseed.js';
import { AutoRejoin } from './auto-rejoin.js';
import type { ClusterRuntime } from './cluster-runtime.js';

/** Clone, rejoin, backup and restore through the agents: one Reseeder per cluster, so two transfers into one host are refused. */
export function transferRouters(cluster: ClusterRuntime): Router[] {
  const log = cluster.options.log.child({ component: 'transfer' });
  const reseeder = new Reseeder(cluster.config, {
    journal: cluster.journal,
    metrics: cluster.metrics,
    logger: log,
  });
  const catalogues = cluster.backupCatalogues;
  const backups = new RemoteBackups(
    cluster.config,
    reseeder,
    { journal: cluster.journal, metrics: cluster.metrics, logger: log },
    catalogues,
  );
  catalogues.busy = () => backups.backupsInUse();
  const jobs = new Map<string, TransferJob>();
  cluster.settleBeforeStop.push(() =>
    Promise.allSettled(
      [...jobs.values()].flatMap((job) => (!job.done && job.settled ? [job.settled] : [])),
    ),
  );
  const deps = { config: cluster.config, reseeder, state: () => cluster.engine.snapshot(), jobs };
  const rejoinDeps = { ...deps, engine: cluster.engine, journal: cluster.journal };
  if (cluster.config.monitor.auto_rejoin) {
    const auto = new AutoRejoin({
      config: cluster.config,
      journal: cluster.journal,
      metrics: cluster.metrics,
      log: cluster.options.log.child({ component: 'auto-rejoin' }),
      mayAct: () => cluster.leadership.mayAct(),
      inMaintenance: (host) => cluster.engine.inMaintenance(host),
      rejoin: (host) => rejoinHost(rejoinDeps, host, { discardErrant: true }),
      jobs,
    });
    cluster.afterCycle.push((cycle) => auto.consider(cycle.state, cycle.observations));
    cluster.autoRejoinReport = () => auto.last;
  }
  return [
    transferRouter(deps),
    rejoinRouter(rejoinDeps),
    backupRouter({ ...deps, backups, catalogues }),
  ];
}
