import express from 'express';
import { z } from 'zod';
import type { LoadedConfig } from '../config/load.js';
import { sendMalformed } from './errors.js';
import type { ClusterState } from '../domain/cluster-state.js';
import { holderOf } from '../engine/roles.js';
import { ReseedRefused } from '../transfer/reseed.js';
import type { BackupCatalogues } from '../transfer/backup-catalogues.js';
import type { RemoteBackups, StartedTransfer } from '../transfer/remote-backup.js';
import { jobView, type TransferJob } from './transfer-routes.js';
import { isOwnName } from '../domain/own.js';

const backupBody = z.strictObject({
  host: z.string().min(1),
  /** Into this agent's snapshot.backup_dir instead of the manager's backup.dir. */
  to_agent: z.string().min(1).optional(),
  rate_limit: z.number().int().min(1024).optional(),
});
const restoreBody = z.strictObject({
  host: z.string().min(1),
  /** `<host>/<directory>` under backup.dir (or the directory alone); default the newest full backup. */
  backup: z.string().min(1).optional(),
  /** The agent keeping `backup` in its snapshot.backup_dir. */
  from_agent: z.string().min(1).optional(),
  rate_limit: z.number().int().min(1024).optional(),
});

export interface BackupRouteDeps {
  config: LoadedConfig;
  backups: RemoteBackups;
  catalogues: BackupCatalogues;
  state: () => ClusterState;
  jobs: Map<string, TransferJob>;
}

/** A started backup or restore as a job of the daemon, followed like a clone (GET /transfers/:id). */
function record(jobs: Map<string, TransferJob>, started: StartedTransfer): TransferJob {
  const job: TransferJob = {
    id: started.id,
    operation: started.progress.operation,
    progress: started.progress,
    done: false,
    notes: [],
  };
  jobs.set(job.id, job);
  started.done.then(
    (result) => {
      job.result = result;
      job.notes.push(...(result.notes ?? []));
      job.ok = true;
      job.done = true;
    },
    (error: Error) => {
      job.ok = false;
      job.error = error.message;
      job.done = true;
    },
  );
  return job;
}

/**
 * GET /api/v1/backups[?host=] lists the backups of every agent and the manager (issue 26).
 * Backup and restore of real hosts through their agents (issue 14): POST /api/v1/backups streams a
 * copy of a host into backup.dir, POST /api/v1/restores sends a backup to a host's agent. Both
 * answer 202 with a transfer job (followed with GET /api/v1/transfers/:id) or 409 with the
 * refusal, nothing changed.
 */
export function backupRouter(deps: BackupRouteDeps): express.Router {
  const router = express.Router();
  const answer = (
    response: express.Response,
    next: express.NextFunction,
    started: Promise<StartedTransfer>,
  ) =>
    started.then(
      (transfer) => response.status(202).json(jobView(record(deps.jobs, transfer))),
      (error: Error) => {
        if (error instanceof ReseedRefused)
          response.status(409).json({ error: 'refused', detail: error.message });
        else next(error);
      },
    );
  // Every catalogue at once: the manager's backup.dir and each agent's snapshot.backup_dir. An
  // agent that cannot be listed is named in `sources` with its error; the rest still answer.
  router.get('/backups', (request, response, next) => {
    const host = request.query.host;
    if (host !== undefined && (typeof host !== 'string' || !isOwnName(deps.config.hosts, host))) {
      response.status(404).json({ error: 'not_found', detail: `unknown host "${String(host)}"` });
      return;
    }
    deps.catalogues.listAll(host).then((listing) => response.json(listing), next);
  });
  router.post('/backups', (request, response, next) => {
    const body = backupBody.safeParse(request.body ?? {});
    if (!body.success) {
      sendMalformed(response, body.error);
      return;
    }
    for (const host of [body.data.host, body.data.to_agent]) {
      if (host !== undefined && !isOwnName(deps.config.hosts, host)) {
        response.status(404).json({ error: 'not_found', detail: `unknown host "${host}"` });
        return;
      }
    }
    void answer(
      response,
      next,
      deps.backups.startBackup(body.data.host, body.data.rate_limit, body.data.to_agent),
    );
  });
  router.post('/restores', (request, response, next) => {
    const body = restoreBody.safeParse(request.body ?? {});
    if (!body.success) {
      sendMalformed(response, body.error);
      return;
    }
    for (const host of [body.data.host, body.data.from_agent]) {
      if (host !== undefined && !isOwnName(deps.config.hosts, host)) {
        response.status(404).json({ error: 'not_found', detail: `unknown host "${host}"` });
        return;
      }
    }
    const state = deps.state();
    const writer = holderOf(state.roles, 'writer');
    if (!writer) {
      response.status(409).json({
        error: 'refused',
        detail:
          'no host holds the writer role: a restored host would have nothing to replicate from',
      });
      return;
    }
    void answer(
      response,
      next,
      deps.backups.startRestore({
        host: body.data.host,
        backup: body.data.backup,
        fromAgent: body.data.from_agent,
        writer,
        states: Object.fromEntries(
          Object.entries(state.hosts).map(([host, entry]) => [host, entry.state]),
        ),
        rateLimit: body.data.rate_limit,
      }),
    );
  });
  return router;
}
