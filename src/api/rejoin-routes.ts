import express from 'express';
import { z } from 'zod';
import { connectManager } from '../checksum/hosts.js';
import { sendMalformed } from './errors.js';
import { holderOf } from '../engine/roles.js';
import type { ControlPlane, OperationResult } from '../engine/types.js';
import type { Journal } from '../journal/journal.js';
import { queryRows } from '../mysql/connect.js';
import {
  countTransactions,
  liveErrant,
  mostAdvancedReplica,
  repointToWriter,
  saveErrantEvents,
} from '../transfer/rejoin.js';
import { ReseedRefused } from '../transfer/reseed.js';
import { jobView, startJob, type TransferRouteDeps } from './transfer-routes.js';
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

/**
 * POST /api/v1/hosts/:host/rejoin {discard_errant, from} for a host in AWAITING_RECOVERY:
 * - nothing errant (by the engine's errant function, on live positions): repoint to the writer, set-online; 200.
 * - errant and no discard_errant: 409, nothing changed.
 * - errant and discard_errant: the errant events are saved under backup.dir first, then the host is
 *   reseeded from the most advanced ONLINE replica (or `from`) and set online; 202 with the transfer job.
 */
export function rejoinRouter(deps: RejoinRouteDeps): express.Router {
  const { config, engine, journal } = deps;
  const router = express.Router();
  const connect = () => connectManager(config);

  /** The engine re-reads positions each cycle; right after a restart it may still hold the old ones. */
  async function setOnlineSoon(host: string, budgetMs = 20_000): Promise<OperationResult> {
    const deadline = Date.now() + budgetMs;
    for (;;) {
      const result = await engine.setOnline(host);
      if (result.ok || Date.now() > deadline) return result;
      await sleep(1000);
    }
  }

  async function replicationRunning(host: string, budgetMs = 30_000): Promise<void> {
    const deadline = Date.now() + budgetMs;
    let last = '';
    while (Date.now() < deadline) {
      const connection = await connect()(host);
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
    const refuse = (detail: string) => {
      journal.append({ phase: 'refused', event: 'host.rejoin', host, reason: detail });
      response.status(409).json({ error: 'refused', detail });
    };
    (async () => {
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
        const position = await repointToWriter(config, host, writer, connect());
        await replicationRunning(host);
        const result = await setOnlineSoon(host);
        const detail = `${host} replicates from ${writer} from GTID ${position}; ${result.ok ? result.detail : `set-online refused: ${result.detail}`}`;
        journal.append({
          phase: 'after',
          event: 'host.rejoin',
          host,
          outcome: result.ok ? 'ok' : 'failed',
          detail,
        });
        response
          .status(result.ok ? 200 : 409)
          .json(result.ok ? { ok: true, detail, errant: [] } : { error: 'refused', detail });
        return;
      }
      const count = countTransactions(errant);
      if (!body.data.discard_errant) {
        return refuse(
          `${host} has ${count} errant transaction(s) the writer ${writer} lacks (${errant.join(', ')}); nothing was changed. --discard-errant saves them to a file under backup.dir, then reseeds ${host} from a replica`,
        );
      }
      const from = body.data.from ?? (await mostAdvancedReplica(config, state, host, writer));
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
      const saved = await saveErrantEvents(config, host, errant, connect());
      journal.append({
        phase: 'note',
        event: 'rejoin.errant_saved',
        host,
        inputs: { errant, file: saved.file },
        reason: `${count} errant transaction(s) of ${host} (${errant.join(', ')}) saved to ${saved.file} before reseeding it from ${from}`,
      });
      const job = await startJob(deps, 'rejoin', from, host, undefined, async (_result, job) => {
        job.notes.push(`errant transactions ${errant.join(', ')} were saved to ${saved.file}`);
        await replicationRunning(host);
        const result = await setOnlineSoon(host);
        if (!result.ok)
          throw new Error(
            `${host} was reseeded and replicates from ${writer}, but set-online was refused: ${result.detail}`,
          );
        job.notes.push(`${host} is ONLINE again as a replica of ${writer}`);
      });
      response.status(202).json({ ...jobView(job), errant, errant_file: saved.file });
    })().catch((error: Error) => {
      if (error instanceof ReseedRefused) refuse(error.message);
      else next(error);
    });
  });
  return router;
}
