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
import { repointStrayReplicas } from './follow-writer.js';
import { describeHookResult } from '../hooks/hooks.js';
import {
  clearOperation,
  failed,
  followersOf,
  note,
  recordStep,
  refused,
  setHolder,
  vipsOf,
  type Operation,
} from './operation.js';

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
 * Writer failover after `writerDeathEvidence` said dead. Order matters for invariant 1 and 2:
 * the candidate applies everything it received before anything else, replicas follow it, the
 * dead writer's VIP is removed where its host still answers, and only then is the candidate
 * made writable and given the VIP.
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
  const operation: Operation = {
    kind: 'failover',
    role,
    from: oldWriter,
    to: target,
    startedAt: ctx.now(),
    step: 'deciding',
  };
  const runner = ctx.runner;
  const hookContext = {
    cluster: ctx.config.cluster,
    role,
    old_writer: oldWriter,
    new_writer: target,
    reason: evidence.reason,
  };
  // Before the old writer is fenced. Journalled either way; it stops the failover only when
  // hooks.pre_failover_aborts says so (a writer beats no writer).
  const pre = await ctx.hooks?.run({ ...hookContext, event: 'pre_failover' });
  if (pre && !pre.ok && ctx.hooks?.preFailoverAborts) {
    const reason = `the pre_failover hook (${ctx.config.hooks?.pre_failover?.join(' ')}) failed: ${describeHookResult(pre)}; hooks.pre_failover_aborts is true, so ${target} is not promoted`;
    journalRefusal(reason, () => {
      note(ctx, { phase: 'refused', event: 'failover.refused', host: target, role, reason });
      ctx.metrics?.failoversTotal.inc({ role, result: 'refused' });
    });
    return { result: refused(reason) };
  }
  // Invariant 7 starts now, beside the catch-up: the old writer's agent is asked to fence (or its
  // lease is waited out) while the candidate applies its relay log; promotion awaits it below.
  const leaseLapse = ctx.leaseLapsed(oldWriter);
  // Also meanwhile, the dead writer's replicas stop fetching from it: on a semi-sync replica that
  // stop waits for a kill connection to the vanished master (about 2 s), and after the promotion
  // it would delay their repoint, and with it the new writer's first acknowledged commit.
  const followers = followersOf(ctx, oldWriter, [target]);
  const ioStops = Promise.all(
    followers.map(async (replica) => {
      const outcome = await runner.attempt(
        {
          event: 'mysql.stop_io_thread',
          host: replica,
          role,
          reason: `${replica} stops fetching from the dead ${oldWriter} while the failover proceeds`,
        },
        (actuator) => actuator.stopIoThread(replica),
      );
      return outcome.ok ? replica : undefined;
    }),
  );
  /**
   * A refused failover leaves the replicas as they were: their IO threads start again (nothing
   * else would: no cycle restarts a stopped IO thread). Only the IO thread, and not waited for
   * until it reaches the old writer, which is most likely dead: START SLAVE waited up to 15 s for
   * a connection that never came, and held the engine's lock, and with it the next try, meanwhile.
   * Bounded here too (a statement stuck on the server); a restart that takes longer finishes in
   * the background, journalled by the runner when it ends.
   */
  const restartIo = async () => {
    const restarts = ioStops.then((stopped) =>
      Promise.all(
        stopped.map(async (replica) => {
          if (!replica) return;
          await runner.attempt(
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
    if (await settlesWithin(restarts, RESTART_IO_WAIT_MS)) return;
    note(ctx, {
      phase: 'note',
      event: 'failover.restart_io_pending',
      host: oldWriter,
      role,
      reason: `failover refused: the IO threads of ${followers.join(', ')} did not restart within ${RESTART_IO_WAIT_MS} ms; the engine goes on, the restarts finish in the background`,
      level: 'warn',
    });
  };

  if (choice.waitFor) {
    await recordStep(ctx, operation, 'catching_up');
    const timeout = ctx.config.actuator.catchup_timeout;
    let applied: boolean;
    try {
      applied = await runner.run(
        {
          event: 'mysql.wait_for_gtid',
          host: target,
          role,
          reason: `apply the relay log up to what ${target} received from ${oldWriter}`,
          inputs: { position: choice.waitFor, timeoutMs: timeout },
        },
        (actuator) => actuator.waitForGtid(target, choice.waitFor as string, timeout),
        true,
      );
    } catch (error) {
      applied = false;
      note(ctx, {
        phase: 'note',
        event: 'failover.catchup_error',
        host: target,
        role,
        reason: (error as Error).message,
      });
    }
    if (!applied) {
      await restartIo();
      await clearOperation(ctx);
      const reason = `${target} did not apply its relay log (${choice.waitFor}) within ${timeout} ms: not promoting a host that lacks received transactions`;
      journalRefusal(reason, () => {
        note(ctx, { phase: 'refused', event: 'failover.refused', host: target, role, reason });
        ctx.metrics?.failoversTotal.inc({ role, result: 'refused' });
      });
      return { result: refused(reason) };
    }
  }

  await recordStep(ctx, operation, 'repointing');
  // The new writer must not pull in whatever the old writer wrote last if it comes back.
  await runner.attempt(
    {
      event: 'mysql.stop_replication',
      host: target,
      role,
      reason: `${target} becomes the writer; stop replicating from the dead ${oldWriter}`,
    },
    // The SQL thread now (nothing more is applied); the IO thread's stop may take seconds under
    // semi-sync (a kill connection to the vanished master) and finishes in the background.
    (actuator) => actuator.stopReplication(target, { ioInBackground: true }),
  );

  await recordStep(ctx, operation, 'fencing');
  // Invariant 7: not while the old writer may still hold its lease (and take writes on its side).
  // Its agent, when it answers, fences on request (VIP off, read_only=ON); otherwise the lease is
  // waited out, and the agent took the VIP down itself when it lapsed.
  const lease = await leaseLapse;
  if (!lease.ok) {
    await restartIo();
    await clearOperation(ctx);
    const reason = `not promoting ${target}: ${lease.detail}`;
    journalRefusal(reason, () =>
      note(ctx, { phase: 'refused', event: 'failover.refused', host: target, role, reason }),
    );
    return { result: refused(reason) };
  }
  if (!lease.agent) {
    for (const ip of vipsOf(ctx, role)) {
      await runner.attempt(
        {
          event: 'vip.remove',
          host: oldWriter,
          role,
          reason: `fence the dead writer's VIP ${ip}`,
          inputs: { ip },
        },
        (actuator) => actuator.removeVip(oldWriter, ip),
      );
    }
  }

  await recordStep(ctx, operation, 'promoting');
  const granted = await ctx.grantLease(target);
  if (!granted.ok) {
    await restartIo();
    await clearOperation(ctx);
    const reason = `not promoting ${target}: ${granted.detail}`;
    journalRefusal(reason, () =>
      note(ctx, { phase: 'refused', event: 'failover.refused', host: target, role, reason }),
    );
    return { result: refused(reason) };
  }
  try {
    await runner.run(
      {
        event: 'mysql.set_read_only',
        host: target,
        role,
        reason: `promote ${target}: read_only=OFF`,
        inputs: { on: false },
      },
      (actuator) => actuator.setReadOnly(target, false),
      undefined,
    );
  } catch (error) {
    await restartIo();
    await clearOperation(ctx);
    ctx.metrics?.failoversTotal.inc({ role, result: 'failed' });
    return { result: failed(`could not make ${target} writable: ${(error as Error).message}`) };
  }

  await recordStep(ctx, operation, 'moving_vip');
  setHolder(ctx, role, target);
  await ctx.persist();
  // After the fence and the promotion: routers send writes to the new writer only. Beside the
  // VIP move, not before it: a hung router must not delay the VIP (it is waited for below).
  const routed = ctx.routes?.follow(`failover of ${role} from ${oldWriter} to ${target}`);
  const vipProblems: string[] = [];
  for (const ip of vipsOf(ctx, role)) {
    const outcome = await runner.attempt(
      {
        event: 'vip.add',
        host: target,
        role,
        reason: `writer VIP ${ip} follows the new writer`,
        inputs: { ip },
      },
      (actuator) => actuator.addVip(target, ip),
    );
    if (!outcome.ok) {
      vipProblems.push(`${ip}: ${outcome.error}`);
      ctx.vipNotAdded(role, ip, target);
    }
  }
  await routed;
  // Replicas follow after the promotion, outside the write outage: the new writer already has
  // every transaction they have (the candidate rule), and they cannot receive from the dead writer.
  await recordStep(ctx, operation, 'repointing');
  await ioStops;
  for (const replica of followers) {
    await runner.attempt(
      {
        event: 'mysql.repoint',
        host: replica,
        role,
        reason: `${replica} follows the new writer ${target}`,
        inputs: { newMaster: target },
      },
      (actuator) => actuator.repoint(replica, target),
    );
  }
  // Replicas of the writer role that replicated from neither (another host, a writer before).
  await repointStrayReplicas(ctx, target, {
    reason: `they follow the new writer after the failover from ${oldWriter}`,
    except: followers,
  });
  await clearOperation(ctx);
  if (!ctx.runner.dry) ctx.metrics?.failoversTotal.inc({ role, result: 'ok' });
  const detail = `${target} is the writer (was ${oldWriter})${vipProblems.length ? `; VIP not added: ${vipProblems.join('; ')}` : ''}`;
  note(ctx, {
    phase: 'note',
    event: ctx.runner.dry ? 'failover.planned' : 'failover.done',
    host: target,
    role,
    reason: detail,
    level: 'warn',
  });
  // Not awaited: the engine's lock must not wait on a program it does not control.
  ctx.hooks?.fire({ ...hookContext, event: 'post_failover', reason: detail });
  return {
    result: { ok: true, detail },
    promoted: {
      host: target,
      position: choice.positions.find((item) => item.host === target)?.known ?? '',
      from: oldWriter,
    },
  };
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
