import express from 'express';
import { z } from 'zod';
import { connectManager } from '../checksum/hosts.js';
import { sendMalformed } from './errors.js';
import { holderOf } from '../engine/roles.js';
import type { ControlPlane, OperationResult } from '../engine/types.js';
import type { Journal } from '../journal/journal.js';
import { queryRows } from '../mysql/connect.js';
import { countTransactions } from '../mysql/gtid.js';
import {
  liveErrant,
  mostAdvancedReplica,
  repointToWriter,
  saveErrantEvents,
} from '../transfer/rejoin.js';
import { ReseedRefused } from '../transfer/reseed.js';
import { jobView, startJob, type TransferJob, type TransferRouteDeps } from './transfer-routes.js';
import { isOwnName } from '../domain/own.js';

const rejoinBody = z.strictObject({
  discard_errant: z.boolean().default(false),
  from: z.string().min(1).optional(),
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface RejoinRouteDeps extends TransferRouteDeps {
  engine: ControlPlane;
  journal: Journal;
}

export type RejoinOutcome =
  /** Nothing changed; the reason (also journalled as `refused host.rejoin`). */
  | { kind: 'refused'; detail: string }
  /** Nothing errant: repointed to the writer and set online (or set-online refused). */
  | { kind: 'repointed'; ok: boolean; detail: string }
  /** Errant events saved to `file`, the host being reseeded from `from` by `job`. */
  | { kind: 'reseeding'; job: TransferJob; errant: string[]; file: string; from: string };

/** The engine re-reads positions each cycle; right after a restart it may still hold the old ones. */
async function setOnlineSoon(
  engine: ControlPlane,
  host: string,
  budgetMs = 20_000,
): Promise<OperationResult> {
  const deadline = Date.now() + budgetMs;
  for (;;) {
    const result = await engine.setOnline(host);
    if (result.ok || Date.now() > deadline) return result;
    await sleep(1000);
  }
}

async function replicationRunning(
  config: RejoinRouteDeps['config'],
  host: string,
  budgetMs = 30_000,
): Promise<void> {
  const connect = connectManager(config);
  const deadline = Date.now() + budgetMs;
  let last = '';
  while (Date.now() < deadline) {
    const connection = await connect(host);
    try {
      const [status] = await queryRows<{
        Slave_IO_Running: string;
        Slave_SQL_Running: string;
        Last_Error: string;
        Last_IO_Error: string;
      }>(connection, 'SHOW SLAVE STATUS');
      if (status?.Slave_IO_Running === 'Yes' && status.Slave_SQL_Running === 'Yes') return;
      last = status
        ? `IO ${status.Slave_IO_Running}, SQL ${status.Slave_SQL_Running} ${status.Last_IO_Error || status.Last_Error || ''}`
        : 'no replication configured';
    } finally {
      connection.destroy();
    }
    await sleep(300);
  }
  throw new Error(`replication on ${host} is not running: ${last}`);
}

/**
 * Rejoin of a host in AWAITING_RECOVERY, for the route and for monitor.auto_rejoin (one code path):
 * - nothing errant (by the engine's errant function, on live positions): repoint to the writer, set-online.
 * - errant and no discardErrant: refused, nothing changed.
 * - errant and discardErrant: the errant events are saved under backup.dir first, then the host is
 *   reseeded from the most advanced ONLINE replica (or `from`) and set online when the copy runs.
 * Refusals are journalled here; other errors are thrown.
 */
export async function rejoinHost(
  deps: RejoinRouteDeps,
  host: string,
  options: { discardErrant: boolean; from?: string },
): Promise<RejoinOutcome> {
  const { config, engine, journal } = deps;
  const refuse = (detail: string): RejoinOutcome => {
    journal.append({ phase: 'refused', event: 'host.rejoin', host, reason: detail });
    return { kind: 'refused', detail };
  };
  try {
    const state = deps.state();
    const current = state.hosts[host]?.state;
    if (current !== 'AWAITING_RECOVERY')
      return refuse(
        `${host} is ${current ?? 'unknown'}; rejoin is for a host in AWAITING_RECOVERY`,
      );
    const writer = holderOf(state.roles, 'writer');
    if (!writer) return refuse('no host holds the writer role: there is nothing to rejoin');
    if (writer === host) return refuse(`${host} holds the writer role`);
    const { errant } = await liveErrant(config, state, host, writer);
    if (errant.length === 0) {
      journal.append({
        phase: 'before',
        event: 'host.rejoin',
        host,
        inputs: { writer },
        reason: `${host} has nothing the writer ${writer} lacks: repoint and set online`,
      });
      const position = await repointToWriter(config, host, writer, connectManager(config));
      await replicationRunning(config, host);
      const result = await setOnlineSoon(engine, host);
      const detail = `${host} replicates from ${writer} from GTID ${position}; ${result.ok ? result.detail : `set-online refused: ${result.detail}`}`;
      journal.append({
        phase: 'after',
        event: 'host.rejoin',
        host,
        outcome: result.ok ? 'ok' : 'failed',
        detail,
      });
      return { kind: 'repointed', ok: result.ok, detail };
    }
    const count = countTransactions(errant);
    if (!options.discardErrant) {
      return refuse(
        `${host} has ${count} errant transaction(s) the writer ${writer} lacks (${errant.join(', ')}); nothing was changed. --discard-errant saves them to a file under backup.dir, then reseeds ${host} from a replica`,
      );
    }
    const from = options.from ?? (await mostAdvancedReplica(config, state, host, writer));
    // Every refusal that needs no agent comes before the errant events are read.
    deps.reseeder.check({
      operation: 'rejoin',
      from,
      to: host,
      writer,
      states: Object.fromEntries(
        Object.entries(state.hosts).map(([name, record]) => [name, record.state]),
      ),
    });
    const saved = await saveErrantEvents(config, host, errant, connectManager(config));
    journal.append({
      phase: 'note',
      event: 'rejoin.errant_saved',
      host,
      inputs: { errant, file: saved.file },
      reason: `${count} errant transaction(s) of ${host} (${errant.join(', ')}) saved to ${saved.file} before reseeding it from ${from}`,
    });
    const job = await startJob(deps, 'rejoin', from, host, undefined, async (_result, job) => {
      job.notes.push(`errant transactions ${errant.join(', ')} were saved to ${saved.file}`);
      await replicationRunning(config, host);
      const result = await setOnlineSoon(engine, host);
      if (!result.ok)
        throw new Error(
          `${host} was reseeded and replicates from ${writer}, but set-online was refused: ${result.detail}`,
        );
      job.notes.push(`${host} is ONLINE again as a replica of ${writer}`);
    });
    return { kind: 'reseeding', job, errant, file: saved.file, from };
  } catch (error) {
    if (error instanceof ReseedRefused) return refuse(error.message);
    throw error;
  }
}

/** POST /api/v1/hosts/:host/rejoin {discard_errant, from}: rejoinHost over HTTP (200, 202 with the job, 409). */
export function rejoinRouter(deps: RejoinRouteDeps): express.Router {
  const { config } = deps;
  const router = express.Router();
  router.post('/hosts/:host/rejoin', (request, response, next) => {
    const host = String(request.params.host);
    const body = rejoinBody.safeParse(request.body ?? {});
    if (!body.success) {
      sendMalformed(response, body.error);
      return;
    }
    for (const name of [host, ...(body.data.from ? [body.data.from] : [])]) {
      if (!isOwnName(config.hosts, name)) {
        response.status(404).json({ error: 'not_found', detail: `unknown host "${name}"` });
        return;
      }
    }
    rejoinHost(deps, host, { discardErrant: body.data.discard_errant, from: body.data.from })
      .then((outcome) => {
        if (outcome.kind === 'refused')
          response.status(409).json({ error: 'refused', detail: outcome.detail });
        else if (outcome.kind === 'repointed')
          response
            .status(outcome.ok ? 200 : 409)
            .json(
              outcome.ok
                ? { ok: true, detail: outcome.detail, errant: [] }
                : { error: 'refused', detail: outcome.detail },
            );
        else
          response
            .status(202)
            .json({ ...jobView(outcome.job), errant: outcome.errant, errant_file: outcome.file });
      })
      .catch(next);
  });
  return router;
}
