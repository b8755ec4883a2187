import type { OperationResult } from './types.js';
import type { OpContext } from './context.js';
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
import { repointStrayReplicas } from './follow-writer.js';
import { isEligible } from './roles.js';
import { describeHookResult } from '../hooks/hooks.js';

/**
 * Planned writer switchover `from` -> `to` (DESIGN.md invariants 2 and 3). The write pause runs
 * from the fence to the new writer's read_only=OFF: fence, VIP off, read the final position,
 * wait for the target to apply it, promote, VIP on. Replicas are repointed after the VIP moved,
 * outside the pause. On a catch-up timeout the fence is undone and the move refused; `force`
 * skips only that wait, and says so loudly.
 */
export async function runSwitchover(
  ctx: OpContext,
  from: string | null,
  to: string,
  /** kind "move-role": the operator's; recovery then keeps the role where the operator put it. */
  options: {
    force: boolean;
    reason: string;
    kind?: 'move-role' | 'switchover';
    /** With no writer to fence: what the target must apply before promotion (its relay log). */ waitFor?: string;
  },
): Promise<OperationResult> {
  const role = ctx.writerRole;
  const runner = ctx.runner;
  const target = ctx.observations.get(to);
  if (from === to) return { ok: true, detail: `${to} already holds ${role}` };
  if (!target?.reachable) return refuseWith(ctx, to, `${to} is not reachable`);
  if (!isEligible({ hosts: ctx.state.hosts, writerRole: role, dropped: ctx.dropped }, role, to)) {
    return refuseWith(
      ctx,
      to,
      `${to} may not hold ${role}: it is ${ctx.state.hosts[to]?.state ?? 'unknown'}${ctx.state.hosts[to]?.held ? ` (held: ${ctx.state.hosts[to]?.held})` : ''}`,
    );
  }
  if (from !== null && !ctx.observations.get(from)?.reachable) {
    return refuseWith(
      ctx,
      to,
      `the writer ${from} is not reachable, so it cannot be fenced; a dead writer is handled by failover on evidence, not by a planned switchover`,
    );
  }
  const others = [...ctx.observations.values()]
    .filter(
      (obs) => obs.reachable && obs.readOnly === false && obs.host !== from && obs.host !== to,
    )
    .map((obs) => obs.host);
  if (others.length > 0)
    return refuseWith(
      ctx,
      to,
      `${others.join(', ')} writable without holding ${role}: fix that first`,
    );

  note(ctx, {
    phase: 'decision',
    event: 'switchover.decided',
    host: to,
    role,
    reason: `switchover ${from ?? '(no writer)'} -> ${to}: ${options.reason}${options.force ? ' (force)' : ''}`,
    inputs: { from, to, force: options.force, dryRun: runner.dry },
  });
  // Before anything changes: a pre_switchover hook that fails (an application that cannot drain)
  // refuses the move, and the journal says which hook and how it ended.
  const hookContext = {
    cluster: ctx.config.cluster,
    role,
    old_writer: from,
    new_writer: to,
    reason: options.reason,
  };
  const pre = await ctx.hooks?.run({ ...hookContext, event: 'pre_switchover' });
  if (pre && !pre.ok)
    return refuseWith(
      ctx,
      to,
      `the pre_switchover hook (${ctx.config.hooks?.pre_switchover?.join(' ')}) failed: ${describeHookResult(pre)}; nothing changed, ${from ?? 'no host'} stays the writer`,
    );
  const operation: Operation = {
    kind: options.kind ?? 'switchover',
    role,
    from: from ?? undefined,
    to,
    startedAt: ctx.now(),
    step: 'deciding',
  };

  if (from !== null) {
    await recordStep(ctx, operation, 'fencing');
    try {
      await runner.run(
        {
          event: 'mysql.fence',
          host: from,
          role,
          reason: `fence the old writer before ${to} becomes writable`,
        },
        (actuator) => actuator.fence(from),
        { readOnly: true, killedConnections: 0 },
      );
      for (const ip of vipsOf(ctx, role)) {
        await runner.run(
          {
            event: 'vip.remove',
            host: from,
            role,
            reason: `writer VIP ${ip} leaves the fenced writer`,
            inputs: { ip },
          },
          (actuator) => actuator.removeVip(from, ip),
          undefined,
        );
      }
    } catch (error) {
      await undoFence(ctx, from);
      return finishRefused(
        ctx,
        to,
        `fencing ${from} failed (${(error as Error).message}); fence undone, ${from} stays the writer`,
        'failed',
      );
    }

    await recordStep(ctx, operation, 'catching_up');
    if (options.force) {
      note(ctx, {
        phase: 'note',
        event: 'switchover.force',
        host: to,
        role,
        reason: `--force: NOT waiting for ${to} to apply ${from}'s last transactions; anything it lacks is lost or diverges`,
        level: 'warn',
      });
    } else {
      const timeout = ctx.config.actuator.catchup_timeout;
      let caughtUp = false;
      let why = '';
      try {
        const finalPosition = runner.dry
          ? (ctx.observations.get(from)?.gtid?.currentPos ?? '')
          : await ctx.positions.currentGtidPosition(from);
        note(ctx, {
          phase: 'note',
          event: 'switchover.final_position',
          host: from,
          role,
          reason: `${from}'s final position after the fence: ${finalPosition}`,
        });
        caughtUp = await runner.run(
          {
            event: 'mysql.wait_for_gtid',
            host: to,
            role,
            reason: `wait until ${to} applied ${from}'s final position`,
            inputs: { position: finalPosition, timeoutMs: timeout },
          },
          (actuator) => actuator.waitForGtid(to, finalPosition, timeout),
          true,
        );
        if (!caughtUp)
          why = `${to} did not apply ${from}'s final position (${finalPosition}) within ${timeout} ms`;
      } catch (error) {
        why = `waiting for ${to} to catch up failed: ${(error as Error).message}`;
      }
      if (!caughtUp) {
        await undoFence(ctx, from);
        return finishRefused(ctx, to, `${why}; fence undone, ${from} stays the writer`, 'refused');
      }
    }
  }

  if (from === null && options.waitFor) {
    await recordStep(ctx, operation, 'catching_up');
    const timeout = ctx.config.actuator.catchup_timeout;
    const waitFor = options.waitFor;
    let applied: boolean;
    try {
      applied = await runner.run(
        {
          event: 'mysql.wait_for_gtid',
          host: to,
          role,
          reason: `apply the relay log up to what ${to} received`,
          inputs: { position: waitFor, timeoutMs: timeout },
        },
        (actuator) => actuator.waitForGtid(to, waitFor, timeout),
        true,
      );
    } catch {
      applied = false;
    }
    if (!applied) {
      await clearOperation(ctx);
      return finishRefused(
        ctx,
        to,
        `${to} did not apply its relay log (${waitFor}) within ${timeout} ms: not promoting a host that lacks received transactions`,
        'refused',
      );
    }
  }

  await recordStep(ctx, operation, 'promoting');
  const lease = await ctx.grantLease(to);
  if (!lease.ok) {
    if (from !== null) await undoFence(ctx, from);
    else await clearOperation(ctx);
    return finishRefused(
      ctx,
      to,
      `not promoting ${to}: ${lease.detail}${from ? `; fence undone, ${from} stays the writer` : ''}`,
      'failed',
    );
  }
  try {
    await runner.run(
      {
        event: 'mysql.set_read_only',
        host: to,
        role,
        reason: `promote ${to}: read_only=OFF`,
        inputs: { on: false },
      },
      (actuator) => actuator.setReadOnly(to, false),
      undefined,
    );
  } catch (error) {
    // The error may have come after read_only=OFF took effect (a timeout on the answer): the old
    // writer gets its writes back only once the target is proved read-only again (read back).
    const rollback = await runner.attempt(
      {
        event: 'mysql.set_read_only',
        host: to,
        role,
        reason: `promotion failed: keep ${to} read-only`,
        inputs: { on: true },
      },
      (actuator) => actuator.setReadOnly(to, true),
    );
    if (!rollback.ok) {
      await clearOperation(ctx);
      return finishRefused(
        ctx,
        to,
        `could not make ${to} writable (${(error as Error).message}), and ${to} could not be proved read-only again (${rollback.error}): ${from ? `${from} stays fenced and ` : ''}no host is made writable until an operator checks ${to}`,
        'failed',
      );
    }
    if (from !== null) await undoFence(ctx, from);
    return finishRefused(
      ctx,
      to,
      `could not make ${to} writable (${(error as Error).message}); ${to} is read-only again (read back)${from ? `; fence undone, ${from} stays the writer` : ''}`,
      'failed',
    );
  }

  await recordStep(ctx, operation, 'moving_vip');
  setHolder(ctx, role, to);
  await ctx.persist();
  // After the fence and the promotion: routers send writes to the new writer only. Beside the
  // VIP move, not before it: a hung router must not delay the VIP (it is waited for below).
  const routed = ctx.routes?.follow(`switchover of ${role} from ${from ?? 'no host'} to ${to}`);
  const problems: string[] = [];
  for (const ip of vipsOf(ctx, role)) {
    const outcome = await runner.attempt(
      {
        event: 'vip.add',
        host: to,
        role,
        reason: `writer VIP ${ip} follows the new writer`,
        inputs: { ip },
      },
      (actuator) => actuator.addVip(to, ip),
    );
    if (!outcome.ok) {
      problems.push(`VIP ${ip} not added: ${outcome.error}`);
      ctx.vipNotAdded(role, ip, to);
    }
  }
  await routed;

  const followers = from !== null ? followersOf(ctx, from, [to]) : [];
  if (from !== null) {
    await recordStep(ctx, operation, 'repointing');
    for (const replica of followers) {
      const outcome = await runner.attempt(
        {
          event: 'mysql.repoint',
          host: replica,
          role,
          reason: `${replica} follows the new writer ${to}`,
          inputs: { newMaster: to },
        },
        (actuator) => actuator.repoint(replica, to),
      );
      if (!outcome.ok) problems.push(`${replica} not repointed: ${outcome.error}`);
    }
  }
  // Every replica of the writer role follows the writer chosen here, also after an election
  // (no old writer: the replicas may still point at a dead one) and when one replicated from
  // a third host.
  problems.push(
    ...(await repointStrayReplicas(ctx, to, {
      reason: from
        ? `they follow the new writer after the switchover from ${from}`
        : 'they follow the elected writer',
      except: followers,
    })),
  );
  await clearOperation(ctx);
  if (!runner.dry) ctx.metrics?.failoversTotal.inc({ role, result: 'ok' });
  const detail = `${to} is the writer${from ? ` (was ${from})` : ''}${options.force ? ' (forced, catch-up skipped)' : ''}${problems.length ? `; ${problems.join('; ')}` : ''}`;
  note(ctx, {
    phase: 'note',
    event: runner.dry ? 'switchover.planned' : 'switchover.done',
    host: to,
    role,
    reason: detail,
  });
  // Not awaited: the engine's lock must not wait on a program it does not control.
  ctx.hooks?.fire({ ...hookContext, event: 'post_switchover', reason: detail });
  return { ok: true, detail, steps: runner.planned.map((entry) => entry.detail ?? entry.event) };
}

/** Gives the old writer its writes back: VIP on, read_only=OFF; the operation is over. */
async function undoFence(ctx: OpContext, from: string): Promise<void> {
  for (const ip of vipsOf(ctx, ctx.writerRole)) {
    await ctx.runner.attempt(
      {
        event: 'vip.add',
        host: from,
        role: ctx.writerRole,
        reason: `undo: writer VIP ${ip} back on ${from}`,
        inputs: { ip },
      },
      (actuator) => actuator.addVip(from, ip),
    );
  }
  await ctx.runner.attempt(
    {
      event: 'mysql.set_read_only',
      host: from,
      role: ctx.writerRole,
      reason: `undo the fence: ${from} stays the writer`,
      inputs: { on: false },
    },
    (actuator) => actuator.setReadOnly(from, false),
  );
  await clearOperation(ctx);
}

async function finishRefused(
  ctx: OpContext,
  to: string,
  reason: string,
  result: 'refused' | 'failed',
): Promise<OperationResult> {
  note(ctx, {
    phase: 'refused',
    event: 'switchover.refused',
    host: to,
    role: ctx.writerRole,
    reason,
  });
  if (!ctx.runner.dry) ctx.metrics?.failoversTotal.inc({ role: ctx.writerRole, result });
  return result === 'refused' ? refused(reason) : failed(reason);
}

function refuseWith(ctx: OpContext, to: string, reason: string): OperationResult {
  note(ctx, {
    phase: 'refused',
    event: 'switchover.refused',
    host: to,
    role: ctx.writerRole,
    reason,
  });
  return refused(reason);
}
