import type { OperationResult } from './types.js';
import type { OpContext } from './context.js';
import { setOnline as setOnlineRecord } from '../monitor/state-machine.js';
import {
  chooseWriterCandidate,
  heldOnly,
  planCatchUp,
  type CandidateChoice,
} from './candidates.js';
import type { Evidence } from './evidence.js';
import { followersOf, note, refused, vipsOf } from './operation.js';
import { executeWriterPlan, PlanAbort, type MoveKind, type MoveRun } from './plan/executor.js';
import { buildWriterPlan } from './plan/writer-plan.js';

/** How long a refused failover waits for its replicas' IO threads to start again. */
export const RESTART_IO_WAIT_MS = 2000;

/** Whether `work` settles within `ms`; it goes on either way. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      work.then(
        () => true as const,
        () => true as const,
      ),
      expired,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export interface FailoverOutcome {
  result: OperationResult;
  /** The new writer and the position it had when promoted, for errant-transaction reports. */
  promoted?: { host: string; position: string; from: string };
}

/**
 * Writer failover after `writerDeathEvidence` said dead. The candidate is chosen (caught up from
 * the most advanced host, or a held host promoted, when needed), then the writer plan runs
 * (src/engine/plan/): its failover steps keep invariants 1 and 2: the candidate applies everything
 * it received, the dead writer is proved fenced or its lease waited out, and only then is the
 * candidate made writable and given the VIP.
 */
export async function runFailover(
  ctx: OpContext,
  oldWriter: string,
  evidence: Evidence,
  /** Lets the engine journal a refusal repeated every cycle only once. */
  journalRefusal: (reason: string, write: () => void) => void = (_reason, write) => write(),
  /** Hosts with transactions the dead writer lacked: never promoted, held or not. */
  diverged: string[] = [],
): Promise<FailoverOutcome> {
  const role = ctx.writerRole;
  let choice: CandidateChoice = chooseWriterCandidate(ctx, [oldWriter]);
  if (!choice.ok) {
    const plan = planCatchUp(ctx, [oldWriter], choice.positions);
    if (plan) choice = await catchUp(ctx, oldWriter, plan, choice);
  }
  if (!choice.ok && ctx.config.failover.promote_held)
    choice = promoteHeld(ctx, oldWriter, choice, diverged);
  if (!choice.ok) {
    journalRefusal(choice.reason, () => {
      note(ctx, {
        phase: 'refused',
        event: 'failover.refused',
        host: oldWriter,
        role,
        reason: `writer ${oldWriter} is dead (${evidence.reason}) but ${choice.reason}`,
        inputs: { evidence: evidence.inputs, positions: choice.positions },
      });
      if (!ctx.runner.dry) ctx.metrics?.failoversTotal.inc({ role, result: 'refused' });
    });
    return { result: refused(choice.reason) };
  }
  const target = choice.host;
  note(ctx, {
    phase: 'decision',
    event: 'failover.decided',
    host: target,
    role,
    reason: `failover from ${oldWriter} to ${target}: ${evidence.reason}; ${choice.reason}`,
    inputs: { evidence: evidence.inputs, positions: choice.positions, dryRun: ctx.runner.dry },
    level: 'warn',
  });
  const followers = followersOf(ctx, oldWriter, [target]);
  const plan = buildWriterPlan({
    config: ctx.config,
    kind: 'failover',
    role,
    from: oldWriter,
    to: target,
    ...(choice.waitFor ? { waitFor: choice.waitFor } : {}),
    reason: evidence.reason,
    followers,
  });
  const run: MoveRun = {
    ctx,
    plan: { ...plan, to: target },
    operation: {
      kind: 'failover',
      role,
      from: oldWriter,
      to: target,
      startedAt: ctx.now(),
      step: 'deciding',
    },
    ...(choice.waitFor ? { waitFor: choice.waitFor } : {}),
    followers,
    problems: [],
    undo: [],
  };
  const executed = await executeWriterPlan(failoverKind(oldWriter, journalRefusal), run);
  if (!executed.ok) return { result: executed.result };
  return {
    result: { ok: true, detail: executed.detail },
    promoted: {
      host: target,
      position: choice.positions.find((item) => item.host === target)?.known ?? '',
      from: oldWriter,
    },
  };
}

/** The failover's own steps: the dead writer's side of the move. */
function failoverKind(
  oldWriter: string,
  journalRefusal: (reason: string, write: () => void) => void,
): MoveKind {
  let leaseLapse: ReturnType<OpContext['leaseLapsed']> | undefined;
  /** Set when the old writer's agent proved a read_only fence: its server is up, and serves. */
  let fencedAlive: { position?: string } | undefined;
  return {
    event: 'failover',
    steps: {
      async stop_replica_io(run) {
        const { ctx, plan } = run;
        const runner = ctx.runner;
        // Invariant 7 starts now, beside the catch-up: the old writer's agent is asked to fence
        // (or its lease is waited out) while the candidate applies its relay log; awaited at
        // wait_for_lease.
        leaseLapse = ctx.leaseLapsed(oldWriter);
        // Awaited at wait_for_lease; a step that aborts before it leaves it running unawaited,
        // and what it journals after the manager stopped must not end as an unhandled rejection.
        leaseLapse.catch(() => undefined);
        // Also meanwhile, the dead writer's replicas stop fetching from it: on a semi-sync replica
        // that stop waits for a kill connection to the vanished master (about 2 s), and after the
        // promotion it would delay their repoint, and with it the new writer's first commit.
        const ioStops = Promise.all(
          run.followers.map(async (replica) => {
            const outcome = await runner.attempt(
              {
                event: 'mysql.stop_io_thread',
                host: replica,
                role: plan.role,
                reason: `${replica} stops fetching from the dead ${oldWriter} while the failover proceeds`,
              },
              (actuator) => actuator.stopIoThread(replica),
            );
            return outcome.ok ? replica : undefined;
          }),
        );
        run.beforeRepoint = ioStops;
        run.undo.push({
          givesWritesBack: false,
          run: () => restartIo(ctx, plan.role, oldWriter, run.followers, ioStops),
        });
      },

      async stop_replication(run) {
        const { ctx, plan } = run;
        // The new writer must not pull in whatever the old writer wrote last if it comes back.
        await ctx.runner.attempt(
          {
            event: 'mysql.stop_replication',
            host: plan.to,
            role: plan.role,
            reason: `${plan.to} becomes the writer; stop replicating from the dead ${oldWriter}`,
          },
          // The SQL thread now (nothing more is applied); the IO thread's stop may take seconds
          // under semi-sync (a kill connection to the vanished master), in the background.
          (actuator) => actuator.stopReplication(plan.to, { ioInBackground: true }),
        );
        // A refused failover leaves the old writer the writer: the target replicates from it
        // again, or it would lack everything written after the refusal (and a later switchover
        // could never catch it up).
        run.undo.push({
          givesWritesBack: false,
          run: () => resumeTarget(ctx, plan.role, oldWriter, plan.to),
        });
      },

      async wait_for_lease(run) {
        const { ctx, plan } = run;
        // Invariant 7: not while the old writer may still hold its lease (and take writes on its
        // side). Its agent, when it answers, fences on request (VIP off, read_only=ON); otherwise
        // the lease is waited out, and the agent took the VIP down itself when it lapsed.
        const lease = await (leaseLapse ?? ctx.leaseLapsed(oldWriter));
        if (!lease.ok) throw new PlanAbort('refused', `not promoting ${plan.to}: ${lease.detail}`);
        if (lease.fence?.how === 'read_only')
          fencedAlive =
            lease.fence.position !== undefined ? { position: lease.fence.position } : {};
        if (lease.fence?.how === 'not_running' || lease.fence?.how === 'stopped')
          noteProcessGone(ctx, oldWriter);
        if (lease.agent) return;
        for (const ip of vipsOf(ctx, plan.role)) {
          await ctx.runner.attempt(
            {
              event: 'vip.remove',
              host: oldWriter,
              role: plan.role,
              reason: `fence the dead writer's VIP ${ip}`,
              inputs: { ip },
            },
            (actuator) => actuator.removeVip(oldWriter, ip),
          );
        }
      },

      async final_catch_up(run) {
        if (fencedAlive) await catchUpFromFenced(run, oldWriter, fencedAlive.position);
      },
    },
    refuse(run, reason, result) {
      const { ctx, plan } = run;
      journalRefusal(reason, () => {
        note(ctx, {
          phase: 'refused',
          event: 'failover.refused',
          host: plan.to,
          role: plan.role,
          reason,
        });
        if (!ctx.runner.dry) ctx.metrics?.failoversTotal.inc({ role: plan.role, result });
      });
    },
    done(run) {
      const problems = run.problems.length ? `; ${run.problems.join('; ')}` : '';
      return `${run.plan.to} is the writer (was ${oldWriter})${problems}`;
    },
  };
}

/**
 * A refused failover leaves the replicas as they were: their IO threads start again (nothing
 * else would: no cycle restarts a stopped IO thread). Only the IO thread, and not waited for
 * until it reaches the old writer, which is most likely dead: START SLAVE waited up to 15 s for
 * a connection that never came, and held the engine's lock, and with it the next try, meanwhile.
 * Bounded here too (a statement stuck on the server); a restart that takes longer finishes in
 * the background, journalled by the runner when it ends.
 */
async function restartIo(
  ctx: OpContext,
  role: string,
  oldWriter: string,
  followers: string[],
  ioStops: Promise<Array<string | undefined>>,
): Promise<void> {
  const restarts = ioStops.then((stopped) =>
    Promise.all(
      stopped.map(async (replica) => {
        if (!replica) return;
        await ctx.runner.attempt(
          {
            event: 'mysql.start_io_thread',
            host: replica,
            role,
            reason: `failover refused: ${replica} fetches from ${oldWriter} again`,
          },
          (actuator) => actuator.startIoThread(replica),
        );
      }),
    ),
  );
  await settleOrNote(ctx, role, oldWriter, restarts, `the IO threads of ${followers.join(', ')}`);
}

/** Waits up to RESTART_IO_WAIT_MS for a refused failover's restarts; says so when they go on. */
async function settleOrNote(
  ctx: OpContext,
  role: string,
  oldWriter: string,
  restarts: Promise<unknown>,
  what: string,
): Promise<void> {
  if (await settlesWithin(restarts, RESTART_IO_WAIT_MS)) return;
  note(ctx, {
    phase: 'note',
    event: 'failover.restart_io_pending',
    host: oldWriter,
    role,
    reason: `failover refused: ${what} did not start again within ${RESTART_IO_WAIT_MS} ms; the engine goes on, the restarts finish in the background`,
    level: 'warn',
  });
}

/**
 * The old writer's agent proved a read_only fence: its server is up, fenced, and has a final
 * position, which may hold transactions the target never received (acknowledged just before a
 * cut, a hang, a partition that healed while the failover waited). Those are transactions the
 * target could have had, so it gets them before it is promoted, from the fenced server itself;
 * when it cannot (no position, no catch-up within catchup_timeout) the failover is refused and the
 * old writer stays fenced: no writer for now beats a writer that lost acknowledged writes.
 */
async function catchUpFromFenced(
  run: MoveRun,
  oldWriter: string,
  answered: string | undefined,
): Promise<void> {
  const { ctx, plan } = run;
  const target = plan.to;
  const role = plan.role;
  let position = answered;
  if (position === undefined) {
    // An agent of the previous protocol proves the fence without the position: read it here.
    try {
      position = await ctx.positions.currentGtidPosition(oldWriter);
    } catch (error) {
      throw new PlanAbort(
        'refused',
        `${oldWriter}'s agent fenced it with its server up, but ${oldWriter}'s final position was not in its answer and cannot be read here (${(error as Error).message}): ${target} might lack ${oldWriter}'s last acknowledged writes, so it is not promoted; ${oldWriter} stays fenced (read-only)`,
      );
    }
  }
  let has: string;
  try {
    has = await ctx.positions.currentGtidPosition(target);
  } catch (error) {
    throw new PlanAbort(
      'refused',
      `${target}'s position cannot be read to compare with fenced ${oldWriter}'s (${(error as Error).message}); not promoting`,
    );
  }
  const lacking = ctx.gtid.missing(has, position);
  if (lacking.length === 0) return;
  const count = ctx.gtid.missingCount(has, position);
  const timeout = ctx.config.actuator.catchup_timeout;
  note(ctx, {
    phase: 'decision',
    event: 'failover.final_catch_up',
    host: target,
    role,
    reason: `${oldWriter} was fenced with its server up and has ${count} transaction(s) ${target} lacks (${lacking.join(', ')}): ${target} replicates them from ${oldWriter} before it is promoted`,
    inputs: { position, has, timeoutMs: timeout },
    level: 'warn',
  });
  let reached: boolean;
  try {
    await ctx.runner.run(
      {
        event: 'mysql.repoint',
        host: target,
        role,
        reason: `${target} fetches the fenced ${oldWriter}'s last transactions`,
        inputs: { newMaster: oldWriter },
      },
      (actuator) => actuator.repoint(target, oldWriter),
      undefined,
    );
    reached = await ctx.runner.run(
      {
        event: 'mysql.wait_for_gtid',
        host: target,
        role,
        reason: `${target} applies the fenced ${oldWriter}'s final position`,
        inputs: { position, timeoutMs: timeout },
      },
      (actuator) => actuator.waitForGtid(target, position, timeout),
      true,
    );
  } catch (error) {
    throw new PlanAbort(
      'refused',
      `${target} could not replicate the fenced ${oldWriter}'s last ${count} transaction(s): ${(error as Error).message}; not promoting a host that lacks writes it could have had, ${oldWriter} stays fenced (read-only)`,
    );
  }
  if (!reached)
    throw new PlanAbort(
      'refused',
      `${target} did not apply the fenced ${oldWriter}'s final position (${position}) within ${timeout} ms; not promoting a host that lacks writes it could have had, ${oldWriter} stays fenced (read-only)`,
    );
  await ctx.runner.run(
    {
      event: 'mysql.stop_replication',
      host: target,
      role,
      reason: `${target} has everything the fenced ${oldWriter} wrote; it stops replicating before its promotion`,
    },
    (actuator) => actuator.stopReplication(target, { ioInBackground: true }),
    undefined,
  );
}

/**
 * A refused failover's target replicates from the old writer again. Bounded like restartIo: the
 * old writer may be the dead one, and its IO thread retries by itself.
 */
async function resumeTarget(
  ctx: OpContext,
  role: string,
  oldWriter: string,
  target: string,
): Promise<void> {
  const resumed = ctx.runner.attempt(
    {
      event: 'mysql.start_replication',
      host: target,
      role,
      reason: `failover refused: ${target} replicates from ${oldWriter} again`,
    },
    (actuator) => actuator.resumeReplication(target),
  );
  await settleOrNote(ctx, role, oldWriter, resumed, `${target}'s replication`);
}

/**
 * A writer beats no writer: the strict choice found no eligible host, but a host held only for a
 * restart or flapping has every transaction. It is promoted (its hold is released and the
 * journal says why); a host that diverged is never a candidate.
 */
function promoteHeld(
  ctx: OpContext,
  oldWriter: string,
  strict: CandidateChoice,
  diverged: string[],
): CandidateChoice {
  const relaxed = chooseWriterCandidate(ctx, [oldWriter, ...diverged], { allowHeld: true });
  if (!relaxed.ok || !heldOnly(ctx, relaxed.host)) return strict;
  const record = ctx.state.hosts[relaxed.host];
  const reason = `writer ${oldWriter} is dead and no eligible candidate has every transaction (${strict.ok ? '' : strict.reason}); ${relaxed.host} is held only for "${record?.held}" and has everything: a writer beats no writer (failover.promote_held)`;
  note(ctx, {
    phase: 'decision',
    event: 'failover.promote_held',
    host: relaxed.host,
    role: ctx.writerRole,
    reason,
    level: 'warn',
  });
  if (!ctx.runner.dry && record)
    ctx.state.hosts[relaxed.host] = {
      ...setOnlineRecord(record, ctx.now()).record,
      reason: `promoted while held (${record.held}): a writer beats no writer`,
    };
  return { ...relaxed, reason: `${relaxed.reason}; promoted although held (${record?.held})` };
}

/** Lets the candidate replicate what it lacks from the most advanced host, then promotes it. */
async function catchUp(
  ctx: OpContext,
  oldWriter: string,
  plan: NonNullable<ReturnType<typeof planCatchUp>>,
  failedChoice: CandidateChoice,
): Promise<CandidateChoice> {
  const role = ctx.writerRole;
  const timeout = ctx.config.actuator.catchup_timeout;
  note(ctx, {
    phase: 'decision',
    event: 'failover.catch_up',
    host: plan.candidate,
    role,
    reason: `writer ${oldWriter} is dead; ${plan.reason}`,
    inputs: { donor: plan.donor, position: plan.position },
  });
  try {
    await ctx.runner.run(
      {
        event: 'mysql.repoint',
        host: plan.candidate,
        role,
        reason: `${plan.candidate} catches up from ${plan.donor}`,
        inputs: { newMaster: plan.donor },
      },
      (actuator) => actuator.repoint(plan.candidate, plan.donor),
      undefined,
    );
    const reached = await ctx.runner.run(
      {
        event: 'mysql.wait_for_gtid',
        host: plan.candidate,
        role,
        reason: `${plan.candidate} applies everything ${plan.donor} has`,
        inputs: { position: plan.position, timeoutMs: timeout },
      },
      (actuator) => actuator.waitForGtid(plan.candidate, plan.position, timeout),
      true,
    );
    if (!reached)
      return {
        ok: false,
        reason: `${plan.candidate} did not reach ${plan.position} from ${plan.donor} within ${timeout} ms`,
        positions: failedChoice.positions,
      };
  } catch (error) {
    return {
      ok: false,
      reason: `catching ${plan.candidate} up from ${plan.donor} failed: ${(error as Error).message}`,
      positions: failedChoice.positions,
    };
  }
  // The promotion point (for naming the old writer's lost writes later) is what it has now.
  const positions = failedChoice.positions.map((position) =>
    position.host === plan.candidate
      ? { ...position, known: plan.position, applied: plan.position }
      : position,
  );
  return {
    ok: true,
    host: plan.candidate,
    reason: `${plan.candidate} caught up from ${plan.donor} to ${plan.position}`,
    positions,
  };
}

/**
 * The old writer's agent proved its server process gone (none running, or stopped by the fence):
 * whatever answers on that host next is a new server. The monitor's restart check reads this as
 * it reads a refused connect (src/monitor/restart.ts), so the host is held even when no check of
 * the manager's own saw the port closed (a restart between two checks).
 */
function noteProcessGone(ctx: OpContext, host: string): void {
  const record = ctx.state.hosts[host];
  if (ctx.runner.dry || !record || record.processGoneAt !== undefined) return;
  ctx.state.hosts[host] = { ...record, processGoneAt: ctx.now() };
}
