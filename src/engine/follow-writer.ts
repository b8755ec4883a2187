/**
 * Replicas of the writer role (`replica_of: writer` in the config) replicate from whichever host
 * holds it. Every procedure that chose a writer (failover, switchover, election) repoints the
 * ones that do not, and the monitor cycle repoints one found replicating from elsewhere while the
 * writer is ONLINE, once per change. Never a master-master peer (`peer`, which replicates from
 * the writer by design and is the failover's and switchover's business), and never to a writer
 * that lacks transactions the replica has: that is refused and journalled.
 */
import type { HostObservation } from '../domain/observation.js';
import type { OpContext } from './context.js';
import type { EngineCore } from './core.js';
import { errantTransactions, gtidViewOf } from './errant.js';
import { note } from './operation.js';
import { holderOf } from './roles.js';
import { replicatesFrom } from './topology.js';

export interface StrayReplica {
  host: string;
  /** Its current master, by configured name when it is one, else host:port. */
  from: string;
}

/** Reachable `replica_of: writer` hosts whose replication points somewhere other than `writer`. */
export function strayReplicas(
  ctx: Pick<OpContext, 'config' | 'observations'>,
  writer: string,
  except: readonly string[] = [],
): StrayReplica[] {
  const strays: StrayReplica[] = [];
  for (const [name, host] of Object.entries(ctx.config.hosts)) {
    if (host.replica_of !== 'writer' || name === writer || except.includes(name)) continue;
    const replication = ctx.observations.get(name)?.replication;
    // Not reachable, or no replication configured at all: nothing says where it should start
    // from; only a replica that replicates from the wrong host is moved.
    if (!ctx.observations.get(name)?.reachable || !replication) continue;
    if (replicatesFrom(replication, writer, ctx.config)) continue;
    strays.push({
      host: name,
      from:
        Object.keys(ctx.config.hosts).find((other) =>
          replicatesFrom(replication, other, ctx.config),
        ) ?? `${replication.masterHost}:${replication.masterPort}`,
    });
  }
  return strays;
}

/**
 * What `replica` has that `writer` lacks. From the observations first; when they name anything,
 * from live reads (the replica first, then the writer, so that whatever the replica received
 * from the writer is in the writer's later read). Unreadable: not ok, never a guess.
 */
async function transactionsWriterLacks(
  ctx: OpContext,
  replica: string,
  writer: string,
): Promise<{ ok: true; lacking: string[] } | { ok: false; reason: string }> {
  const observed = lacking(ctx, ctx.observations.get(replica), ctx.observations.get(writer));
  if (observed.length === 0 || ctx.runner.dry) return { ok: true, lacking: observed };
  try {
    const replicaView = await ctx.positions.gtidView(replica);
    const writerView = await ctx.positions.gtidView(writer);
    return {
      ok: true,
      lacking: errantTransactions({ host: replicaView, writer: writerView, gtid: ctx.gtid }),
    };
  } catch (error) {
    return {
      ok: false,
      reason: `${writer} seemed to lack ${observed.join(',')} that ${replica} has, and the live positions could not be read to check (${(error as Error).message})`,
    };
  }
}

function lacking(
  ctx: OpContext,
  replica: HostObservation | undefined,
  writer: HostObservation | undefined,
): string[] {
  const replicaView = gtidViewOf(replica, ctx.gtid.merge);
  const writerView = gtidViewOf(writer, ctx.gtid.merge);
  if (!replicaView || !writerView) return [];
  return errantTransactions({ host: replicaView, writer: writerView, gtid: ctx.gtid });
}

/**
 * Repoints each stray replica to `writer` (GTID), journalled; a replica that has transactions
 * the writer lacks is refused (`replica.repoint_refused`). Returns the problems, for the
 * procedure's result.
 */
export async function repointStrayReplicas(
  ctx: OpContext,
  writer: string,
  options: { reason: string; except?: readonly string[]; strays?: StrayReplica[] },
): Promise<string[]> {
  const problems: string[] = [];
  for (const stray of options.strays ?? strayReplicas(ctx, writer, options.except)) {
    const check = await transactionsWriterLacks(ctx, stray.host, writer);
    if (!check.ok || check.lacking.length > 0) {
      const why = check.ok
        ? `${stray.host} has ${check.lacking.join(',')} that ${writer} lacks: repointing it would make it skip or fail on them`
        : check.reason;
      note(ctx, {
        phase: 'refused',
        event: 'replica.repoint_refused',
        host: stray.host,
        role: ctx.writerRole,
        reason: `not repointing ${stray.host} (replica_of: writer, replicating from ${stray.from}) to the writer ${writer}: ${why}`,
        inputs: { from: stray.from, writer, ...(check.ok ? { lacking: check.lacking } : {}) },
      });
      problems.push(`${stray.host} not repointed: ${why}`);
      continue;
    }
    const outcome = await ctx.runner.attempt(
      {
        event: 'mysql.repoint',
        host: stray.host,
        role: ctx.writerRole,
        reason: `${stray.host} (replica_of: writer) replicates from ${stray.from}, not from the writer ${writer}: ${options.reason}`,
        inputs: { newMaster: writer, from: stray.from },
      },
      (actuator) => actuator.repoint(stray.host, writer),
    );
    if (!outcome.ok) problems.push(`${stray.host} not repointed: ${outcome.error}`);
  }
  return problems;
}

/**
 * Every monitor cycle: a replica of the writer found replicating from another host while the
 * writer is ONLINE and was observed writable is repointed, once per change (its master, the
 * writer): a repoint that fails or is refused is not retried every cycle in a loop, only when
 * something changed. Hosts in maintenance or ADMIN_OFFLINE are the operator's.
 *
 * Only on an observation of the replica taken after the writer became the writer: the procedure
 * that moved the writer (a failover in this very cycle, an operator's switchover while the checks
 * ran) repointed its replicas, and an older observation still shows the old master. Repointing
 * again on it restarted the replica's replication for nothing and, under the engine's lock,
 * waited for its IO thread to reach the writer: a writer killed just after its switchover was
 * failed over only when that wait ended.
 */
export async function keepReplicasOnWriter(core: EngineCore, ctx: OpContext): Promise<void> {
  const writer = holderOf(core.state.roles, core.writerRole);
  if (!writer || core.state.operation) return;
  if (core.followedWriter?.host !== writer)
    core.followedWriter = { host: writer, since: core.followedWriter ? core.now() : 0 };
  const observed = core.observations.get(writer);
  if (
    core.state.hosts[writer]?.state !== 'ONLINE' ||
    !observed?.reachable ||
    observed.readOnly !== false
  )
    return;
  const since = core.followedWriter.since;
  const strays = strayReplicas(ctx, writer).filter(
    (stray) =>
      !core.maintenance.has(stray.host) &&
      core.state.hosts[stray.host]?.state !== 'ADMIN_OFFLINE' &&
      (core.observations.get(stray.host)?.at ?? 0) > since,
  );
  for (const stray of strays) {
    const key = `replica.follow:${stray.host}`;
    const change = `replicates from ${stray.from}, not from the writer ${writer}`;
    if (!ctx.runner.dry) {
      const seen = core.conditions.get(key) === change;
      core.condition(key, change, () => undefined);
      if (seen) continue;
    }
    await repointStrayReplicas(ctx, writer, {
      reason: 'a replica of the writer follows the writer',
      strays: [stray],
    });
  }
}
