import express from 'express';
import { z } from 'zod';
import type { LoadedConfig } from '../config/load.js';
import { sendMalformed } from './errors.js';
import type { ClusterState } from '../domain/cluster-state.js';
import { holderOf } from '../engine/roles.js';
import {
  ReseedRefused,
  type ReseedResult,
  type Reseeder,
  type TransferOperation,
  type TransferProgress,
} from '../transfer/reseed.js';
import { isOwnName } from '../domain/own.js';

const cloneBody = z.strictObject({
  from: z.string().min(1),
  to: z.string().min(1),
  rate_limit: z.number().int().min(1024).optional(),
});

export interface TransferJob {
  id: string;
  operation: TransferOperation;
  progress: TransferProgress;
  done: boolean;
  ok?: boolean;
  result?: ReseedResult;
  error?: string;
  /** What happened after the copy (rejoin: set-online). */
  notes: string[];
  /** Resolves when the job is done, its last step included. */
  settled?: Promise<void>;
}

export interface TransferRouteDeps {
  config: LoadedConfig;
  reseeder: Reseeder;
  state: () => ClusterState;
  jobs: Map<string, TransferJob>;
}

function statesOf(state: ClusterState): Record<string, string> {
  return Object.fromEntries(
    Object.entries(state.hosts).map(([host, record]) => [host, record.state]),
  );
}

/** Starts a reseed and records it as a job the CLI can follow with GET /transfers/:id. */
export async function startJob(
  deps: TransferRouteDeps,
  operation: TransferOperation,
  from: string,
  to: string,
  rateLimit: number | undefined,
  after?: (result: ReseedResult, job: TransferJob) => Promise<void>,
): Promise<TransferJob> {
  const state = deps.state();
  const writer = holderOf(state.roles, 'writer');
  if (!writer)
    throw new ReseedRefused(
      'no host holds the writer role: a copy would have nothing to replicate from',
    );
  const started = await deps.reseeder.start({
    operation,
    from,
    to,
    writer,
    states: statesOf(state),
    rateLimit,
  });
  const job: TransferJob = {
    id: started.id,
    operation,
    progress: deps.reseeder.inProgress().find((item) => item.id === started.id) as TransferProgress,
    done: false,
    notes: [],
  };
  deps.jobs.set(job.id, job);
  job.settled = started.done.then(
    async (result) => {
      job.result = result;
      job.notes.push(...(result.notes ?? []));
      try {
        await after?.(result, job);
        job.ok = true;
      } catch (error) {
        job.ok = false;
        job.error = (error as Error).message;
      }
      job.done = true;
    },
    (error: Error) => {
      job.done = true;
      job.ok = false;
      job.error = error.message;
    },
  );
  return job;
}

export function jobView(job: TransferJob): Record<string, unknown> {
  return {
    id: job.id,
    operation: job.operation,
    done: job.done,
    ok: job.ok ?? null,
    progress: job.progress,
    result: job.result ?? null,
    error: job.error ?? null,
    notes: job.notes,
  };
}

/**
 * Clone through the agents (issue 14): POST /api/v1/transfers starts one and answers 202 with its
 * id (409 with the reason when refused: nothing was changed); GET /api/v1/transfers/:id follows it.
 */
export function transferRouter(deps: TransferRouteDeps): express.Router {
  const router = express.Router();
  router.post('/transfers', (request, response, next) => {
    const body = cloneBody.safeParse(request.body ?? {});
    if (!body.success) {
      sendMalformed(response, body.error);
      return;
    }
    for (const host of [body.data.from, body.data.to]) {
      if (!isOwnName(deps.config.hosts, host)) {
        response.status(404).json({ error: 'not_found', detail: `unknown host "${host}"` });
        return;
      }
    }
    startJob(deps, 'clone', body.data.from, body.data.to, body.data.rate_limit).then(
      (job) => response.status(202).json(jobView(job)),
      (error: Error) => {
        if (error instanceof ReseedRefused)
          response.status(409).json({ error: 'refused', detail: error.message });
        else next(error);
      },
    );
  });
  router.get('/transfers', (_request, response) => {
    response.json({ transfers: [...deps.jobs.values()].map(jobView) });
  });
  router.get('/transfers/:id', (request, response) => {
    const job = deps.jobs.get(String(request.params.id));
    if (!job) {
      response
        .status(404)
        .json({ error: 'not_found', detail: `no transfer ${String(request.params.id)}` });
      return;
    }
    response.json(jobView(job));
  });
  return router;
}
