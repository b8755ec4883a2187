import type { Plan, PlanStep } from '../../analysis/types.js';
import type { OpContext } from '../context.js';
import type { OperationResult } from '../types.js';
import { repointStrayReplicas } from '../follow-writer.js';
import {
  clearOperation,
  failed,
  note,
  recordStep,
  refused,
  setHolder,
  vipsOf,
  type Operation,
} from '../operation.js';
import { describeHookResult } from '../../hooks/hooks.js';

type StepName = PlanStep['step'];

/** A step that ends the move: refused (nothing was wrong, the move may not run) or failed. */
export class PlanAbort extends Error {
  constructor(
    readonly result: 'refused' | 'failed',
    message: string,
    /** false: the old writer stays fenced whatever the undo list says (the target may be writable). */
    readonly giveWritesBack = true,
  ) {
    super(message);
  }
}

/** Something a later failure must take back, newest first. */
export interface Undo {
  run(): Promise<void>;
  /** Gives the old writer its writes back: skipped when the target could not be proved read-only. */
  givesWritesBack: boolean;
}

/** One writer move being executed: what the steps share. */
export interface MoveRun {
  ctx: OpContext;
  plan: Plan & { to: string };
  operation: Operation;
  /** What the target must apply before promotion (its relay log), when known. */
  waitFor?: string;
  /** The old writer's replicas that follow the new writer at the repoint step. */
  followers: string[];
  /** Settled before the repoint step (the failover's IO-thread stops). */
  beforeRepoint?: Promise<unknown>;
  /** Non-fatal problems, reported in the move's detail. */
  problems: string[];
  undo: Undo[];
  /** The save that put the move's record on disk (see RECORD_ON_DISK_BEFORE). */
  recorded?: Promise<void>;
}

export type StepImpl = (run: MoveRun, step: PlanStep) => Promise<void>;

/** What differs between failover, switchover and election: their own steps and journal events. */
export interface MoveKind {
  /** Journal event prefix: "failover" or "switchover". */
  event: 'failover' | 'switchover';
  steps: Partial<Record<StepName, StepImpl>>;
  /** Journals and counts a refusal or failure (the failover journals a repeated one once). */
  refuse(run: MoveRun, reason: string, result: 'refused' | 'failed'): void;
  /** The success's one-line detail. */
  done(run: MoveRun): string;
}

/** The step a restarted manager finds recorded (recovery reads the servers, not this). */
const OPERATION_STEP: Record<StepName, string | undefined> = {
  pre_hook: undefined,
  stop_replica_io: undefined,
  fence: 'fencing',
  wait_for_lease: 'fencing',
  final_catch_up: 'catching_up',
  catch_up: 'catching_up',
  stop_replication: 'repointing',
  grant_lease: 'promoting',
  promote: 'promoting',
  route: 'moving_vip',
  repoint: 'repointing',
  post_hook: undefined,
};

/**
 * The steps that wait until the move's record is on disk. A manager killed in a move decides
 * from the record's presence and the live read_only values, never from the recorded step
 * (recovery.ts): a switchover's fence must be undoable after a crash, and a writable target
 * must be finished (old writer fenced, VIP moved) by the next manager. The record is saved as
 * the move begins, while its first steps run; each later step only starts the save of its
 * step. A failover used to wait for a state file's write and two fsyncs before each of its five
 * recorded steps up to the promotion, which on a loaded disk cost more than the steps.
 */
const RECORD_ON_DISK_BEFORE: ReadonlySet<StepName> = new Set(['fence', 'promote']);

/** Starts the save of the move's record at `step`; the first one is what the steps above wait for. */
function startRecording(run: MoveRun, step: string): void {
  const save = recordStep(run.ctx, run.operation, step);
  // The first is awaited before a step that needs it. A later one that fails leaves an older
  // step on disk, which recovery does not read; the move's last save reports a lasting failure.
  save.catch(() => undefined);
  run.recorded ??= save;
}

/** Waits until the move's record is on disk. */
async function recordOnDisk(run: MoveRun, step: StepName): Promise<void> {
  try {
    await run.recorded;
  } catch (error) {
    throw new PlanAbort(
      'failed',
      `the move's record could not be saved before ${step}: ${(error as Error).message}`,
    );
  }
}

/**
 * The one executor of writer moves. Each step of the plan runs in order, its progress recorded
 * in the state as it starts (the record on disk before a step of RECORD_ON_DISK_BEFORE); every
 * action inside goes through the runner (journal before and after, metrics, the HA fencing token,
 * dry-run). A step that aborts takes back what earlier steps registered, newest first; the post
 * hook fires after success without being waited for.
 */
export async function executeWriterPlan(
  kind: MoveKind,
  run: MoveRun,
): Promise<{ ok: true; detail: string } | { ok: false; result: OperationResult }> {
  const { ctx, plan } = run;
  startRecording(run, run.operation.step);
  for (const step of plan.steps) {
    if (step.step === 'post_hook') continue;
    const impl = kind.steps[step.step] ?? SHARED_STEPS[step.step];
    if (!impl) throw new Error(`no implementation for plan step ${step.step}`);
    const recorded = OPERATION_STEP[step.step];
    if (recorded && run.operation.step !== recorded) startRecording(run, recorded);
    try {
      if (RECORD_ON_DISK_BEFORE.has(step.step)) await recordOnDisk(run, step.step);
      await impl(run, step);
    } catch (error) {
      const abort =
        error instanceof PlanAbort
          ? error
          : new PlanAbort('failed', `${step.step} failed: ${(error as Error).message}`);
      const reason = await takeBack(run, abort);
      kind.refuse(run, reason, abort.result);
      return {
        ok: false,
        result: abort.result === 'refused' ? refused(reason) : failed(reason),
      };
    }
  }
  await clearOperation(ctx);
  if (!ctx.runner.dry) ctx.metrics?.failoversTotal.inc({ role: plan.role, result: 'ok' });
  const detail = kind.done(run);
  note(ctx, {
    phase: 'note',
    event: `${kind.event}.${ctx.runner.dry ? 'planned' : 'done'}`,
    host: plan.to,
    role: plan.role,
    reason: detail,
    ...(kind.event === 'failover' ? { level: 'warn' as const } : {}),
  });
  if (plan.steps.some((step) => step.step === 'post_hook'))
    // Not awaited: the engine's lock must not wait on a program it does not control.
    ctx.hooks?.fire({ ...hookContext(run), event: `post_${kind.event}`, reason: detail });
  return { ok: true, detail };
}

/** Runs the undo list newest first; says in the reason when the old writer got its writes back. */
async function takeBack(run: MoveRun, abort: PlanAbort): Promise<string> {
  let gaveBack = false;
  for (const undo of run.undo.reverse()) {
    if (undo.givesWritesBack && !abort.giveWritesBack) continue;
    await undo.run();
    gaveBack ||= undo.givesWritesBack;
  }
  run.undo = [];
  await clearOperation(run.ctx);
  const from = run.plan.from;
  return gaveBack && from
    ? `${abort.message}; fence undone, ${from} stays the writer`
    : abort.message;
}

export function hookContext(run: MoveRun) {
  return {
    cluster: run.ctx.config.cluster,
    role: run.plan.role,
    old_writer: run.plan.from,
    new_writer: run.plan.to,
    reason: run.plan.reason,
  };
}

/** The relay log up to what the target received (failover, election). */
export async function relayLogCatchUp(run: MoveRun): Promise<void> {
  const { ctx, plan } = run;
  const waitFor = run.waitFor;
  if (!waitFor) return;
  const timeout = ctx.config.actuator.catchup_timeout;
  let applied: boolean;
  try {
    applied = await ctx.runner.run(
      {
        event: 'mysql.wait_for_gtid',
        host: plan.to,
        role: plan.role,
        reason: plan.from
          ? `apply the relay log up to what ${plan.to} received from ${plan.from}`
          : `apply the relay log up to what ${plan.to} received`,
        inputs: { position: waitFor, timeoutMs: timeout },
      },
      (actuator) => actuator.waitForGtid(plan.to, waitFor, timeout),
      true,
    );
  } catch (error) {
    applied = false;
    note(ctx, {
      phase: 'note',
      event: `${plan.kind === 'failover' ? 'failover' : 'switchover'}.catchup_error`,
      host: plan.to,
      role: plan.role,
      reason: (error as Error).message,
    });
  }
  if (!applied)
    throw new PlanAbort(
      'refused',
      `${plan.to} did not apply its relay log (${waitFor}) within ${timeout} ms: not promoting a host that lacks received transactions`,
    );
}

/** The steps every writer move runs the same way: from the pre hook, and from the lease on. */
const SHARED_STEPS: Partial<Record<StepName, StepImpl>> = {
  /** Before anything changes: a failing pre hook refuses the move (a failover only with pre_failover_aborts). */
  async pre_hook(run) {
    const { ctx, plan } = run;
    const kind = plan.kind === 'failover' ? 'failover' : 'switchover';
    const pre = await ctx.hooks?.run({ ...hookContext(run), event: `pre_${kind}` });
    if (!pre || pre.ok) return;
    const command = (
      kind === 'failover' ? ctx.config.hooks?.pre_failover : ctx.config.hooks?.pre_switchover
    )?.join(' ');
    if (kind === 'switchover')
      throw new PlanAbort(
        'refused',
        `the pre_switchover hook (${command}) failed: ${describeHookResult(pre)}; nothing changed, ${plan.from ?? 'no host'} stays the writer`,
      );
    // A writer beats no writer: journalled either way, it stops the failover only when asked to.
    if (ctx.hooks?.preFailoverAborts)
      throw new PlanAbort(
        'refused',
        `the pre_failover hook (${command}) failed: ${describeHookResult(pre)}; hooks.pre_failover_aborts is true, so ${plan.to} is not promoted`,
      );
  },

  catch_up: relayLogCatchUp,

  /** A writer that holds no lease would not fence itself if it were cut off. */
  async grant_lease(run) {
    const { ctx, plan } = run;
    const lease = await ctx.grantLease(plan.to);
    if (!lease.ok)
      throw new PlanAbort(
        plan.kind === 'failover' ? 'refused' : 'failed',
        `not promoting ${plan.to}: ${lease.detail}`,
      );
  },

  async promote(run) {
    const { ctx, plan } = run;
    const target = plan.to;
    try {
      await ctx.runner.run(
        {
          event: 'mysql.set_read_only',
          host: target,
          role: plan.role,
          reason: `promote ${target}: read_only=OFF`,
          inputs: { on: false },
        },
        (actuator) => actuator.setReadOnly(target, false),
        undefined,
      );
    } catch (error) {
      // The error may have come after read_only=OFF took effect (a timeout on the answer): the
      // old writer gets its writes back only once the target is proved read-only again.
      const rollback = await ctx.runner.attempt(
        {
          event: 'mysql.set_read_only',
          host: target,
          role: plan.role,
          reason: `promotion failed: keep ${target} read-only`,
          inputs: { on: true },
        },
        (actuator) => actuator.setReadOnly(target, true),
      );
      const message = (error as Error).message;
      if (!rollback.ok)
        throw new PlanAbort(
          'failed',
          `could not make ${target} writable (${message}), and ${target} could not be proved read-only again (${rollback.error}): ${plan.kind === 'switchover' && plan.from ? `${plan.from} stays fenced and ` : ''}no host is made writable until an operator checks ${target}`,
          false,
        );
      throw new PlanAbort(
        'failed',
        `could not make ${target} writable (${message}); ${target} is read-only again (read back)`,
      );
    }
  },

  /** After the fence and the promotion: the VIPs and the routers send writes to the new writer only. */
  async route(run) {
    const { ctx, plan } = run;
    setHolder(ctx, plan.role, plan.to);
    await ctx.persist();
    // Beside the VIP move, not before it: a hung router must not delay the VIP (waited for below).
    const routed = ctx.routes?.follow(
      `${plan.kind === 'failover' ? 'failover' : 'switchover'} of ${plan.role} from ${plan.from ?? 'no host'} to ${plan.to}`,
    );
    for (const ip of vipsOf(ctx, plan.role)) {
      const outcome = await ctx.runner.attempt(
        {
          event: 'vip.add',
          host: plan.to,
          role: plan.role,
          reason: `writer VIP ${ip} follows the new writer`,
          inputs: { ip },
        },
        (actuator) => actuator.addVip(plan.to, ip),
      );
      if (!outcome.ok) {
        run.problems.push(`VIP ${ip} not added: ${outcome.error}`);
        ctx.vipNotAdded(plan.role, ip, plan.to);
      }
    }
    await routed;
  },

  /**
   * Outside the write pause: the replicas follow the new writer, which has every transaction
   * they have (the candidate rule); so do replicas of the role that followed neither host.
   */
  async repoint(run) {
    const { ctx, plan } = run;
    await run.beforeRepoint;
    for (const replica of run.followers) {
      const outcome = await ctx.runner.attempt(
        {
          event: 'mysql.repoint',
          host: replica,
          role: plan.role,
          reason: `${replica} follows the new writer ${plan.to}`,
          inputs: { newMaster: plan.to },
        },
        (actuator) => actuator.repoint(replica, plan.to),
      );
      if (!outcome.ok) run.problems.push(`${replica} not repointed: ${outcome.error}`);
    }
    run.problems.push(
      ...(await repointStrayReplicas(ctx, plan.to, {
        reason: plan.from
          ? `they follow the new writer after the ${plan.kind} from ${plan.from}`
          : 'they follow the elected writer',
        except: run.followers,
      })),
    );
  },
};
