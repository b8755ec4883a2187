import type { OperationResult } from './types.js';
import type { OpContext } from './context.js';
import { followersOf, note, refused, vipsOf } from './operation.js';
import {
  executeWriterPlan,
  PlanAbort,
  relayLogCatchUp,
  type MoveKind,
  type MoveRun,
} from './plan/executor.js';
import { buildWriterPlan } from './plan/writer-plan.js';
import { isEligible } from './roles.js';

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
  const followers = from !== null ? followersOf(ctx, from, [to]) : [];
  const plan = buildWriterPlan({
    config: ctx.config,
    kind: from === null ? 'election' : 'switchover',
    role,
    from,
    to,
    ...(from === null && options.waitFor ? { waitFor: options.waitFor } : {}),
    reason: options.reason,
    followers,
  });
  const run: MoveRun = {
    ctx,
    plan: { ...plan, to },
    operation: {
      kind: options.kind ?? 'switchover',
      role,
      from: from ?? undefined,
      to,
      startedAt: ctx.now(),
      step: 'deciding',
    },
    ...(from === null && options.waitFor ? { waitFor: options.waitFor } : {}),
    followers,
    problems: [],
    undo: [],
  };
  const executed = await executeWriterPlan(switchoverKind(options.force), run);
  if (!executed.ok) return executed.result;
  return {
    ok: true,
    detail: executed.detail,
    steps: runner.planned.map((entry) => entry.detail ?? entry.event),
  };
}

/** The switchover's own steps: the live old writer is fenced, and the target applies all it wrote. */
function switchoverKind(force: boolean): MoveKind {
  return {
    event: 'switchover',
    steps: {
      async fence(run) {
        const { ctx, plan } = run;
        const from = plan.from as string;
        // Registered first: a fence that failed halfway is undone too.
        run.undo.push({ givesWritesBack: true, run: () => undoFence(ctx, from) });
        try {
          await ctx.runner.run(
            {
              event: 'mysql.fence',
              host: from,
              role: plan.role,
              reason: `fence the old writer before ${plan.to} becomes writable`,
            },
            (actuator) => actuator.fence(from),
            { readOnly: true, killedConnections: 0 },
          );
          for (const ip of vipsOf(ctx, plan.role)) {
            await ctx.runner.run(
              {
                event: 'vip.remove',
                host: from,
                role: plan.role,
                reason: `writer VIP ${ip} leaves the fenced writer`,
                inputs: { ip },
              },
              (actuator) => actuator.removeVip(from, ip),
              undefined,
            );
          }
        } catch (error) {
          throw new PlanAbort('failed', `fencing ${from} failed (${(error as Error).message})`);
        }
      },

      async catch_up(run) {
        const { ctx, plan } = run;
        const from = plan.from;
        if (from === null) return relayLogCatchUp(run);
        if (force) {
          note(ctx, {
            phase: 'note',
            event: 'switchover.force',
            host: plan.to,
            role: plan.role,
            reason: `--force: NOT waiting for ${plan.to} to apply ${from}'s last transactions; anything it lacks is lost or diverges`,
            level: 'warn',
          });
          return;
        }
        const timeout = ctx.config.actuator.catchup_timeout;
        let why: string;
        try {
          const finalPosition = ctx.runner.dry
            ? (ctx.observations.get(from)?.gtid?.currentPos ?? '')
            : await ctx.positions.currentGtidPosition(from);
          note(ctx, {
            phase: 'note',
            event: 'switchover.final_position',
            host: from,
            role: plan.role,
            reason: `${from}'s final position after the fence: ${finalPosition}`,
          });
          const caughtUp = await ctx.runner.run(
            {
              event: 'mysql.wait_for_gtid',
              host: plan.to,
              role: plan.role,
              reason: `wait until ${plan.to} applied ${from}'s final position`,
              inputs: { position: finalPosition, timeoutMs: timeout },
            },
            (actuator) => actuator.waitForGtid(plan.to, finalPosition, timeout),
            true,
          );
          if (caughtUp) return;
          why = `${plan.to} did not apply ${from}'s final position (${finalPosition}) within ${timeout} ms`;
        } catch (error) {
          why = `waiting for ${plan.to} to catch up failed: ${(error as Error).message}`;
        }
        throw new PlanAbort('refused', why);
      },
    },
    refuse(run, reason, result) {
      const { ctx, plan } = run;
      note(ctx, {
        phase: 'refused',
        event: 'switchover.refused',
        host: plan.to,
        role: plan.role,
        reason,
      });
      if (!ctx.runner.dry) ctx.metrics?.failoversTotal.inc({ role: plan.role, result });
    },
    done(run) {
      const { plan } = run;
      const problems = run.problems.length ? `; ${run.problems.join('; ')}` : '';
      return `${plan.to} is the writer${plan.from ? ` (was ${plan.from})` : ''}${force ? ' (forced, catch-up skipped)' : ''}${problems}`;
    },
  };
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
