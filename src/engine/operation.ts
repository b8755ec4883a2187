import type { ClusterState } from '../domain/cluster-state.js';
import type { OperationResult } from './types.js';
import type { OpContext } from './context.js';
import { NO_IP, roleSlots } from './roles.js';
import { replicatesFrom } from './topology.js';

export type Operation = NonNullable<ClusterState['operation']>;

/** Steps of a writer move, in order; recovery after a restart looks at how far it got. */
export const OPERATION_STEPS = [
  'deciding',
  'fencing',
  'catching_up',
  'repointing',
  'promoting',
  'moving_vip',
  'done',
] as const;

/**
 * Records the step as it starts, so a manager killed here knows what was in flight (the record's
 * presence decides recovery; the step is what `show` and the journal tell the operator). The
 * writer-move executor awaits the save only before the steps that need it on disk.
 */
export async function recordStep(
  ctx: OpContext,
  operation: Operation,
  step: string,
): Promise<void> {
  if (ctx.runner.dry) return;
  operation.step = step;
  ctx.state.operation = { ...operation };
  await ctx.persist();
}

export async function clearOperation(ctx: OpContext): Promise<void> {
  if (ctx.runner.dry) return;
  delete ctx.state.operation;
  await ctx.persist();
}

/** The real IPs of a role (an IP-less exclusive role moves no VIP). */
export function vipsOf(ctx: Pick<OpContext, 'config'>, role: string): string[] {
  const config = ctx.config.roles[role];
  return config ? config.ips : [];
}

/** Gives every slot of an exclusive role to `host` in the state (not in passive mode). */
export function setHolder(ctx: OpContext, role: string, host: string | null): void {
  if (ctx.runner.dry) return;
  const config = ctx.config.roles[role];
  if (!config) return;
  const slots: Record<string, string | null> = {};
  for (const ip of roleSlots(config)) slots[ip] = host;
  ctx.state.roles = { ...ctx.state.roles, [role]: slots };
}

export function hasVip(ip: string): boolean {
  return ip !== NO_IP;
}

/** Reachable hosts that replicate from `master` and should follow the new writer instead. */
export function followersOf(ctx: OpContext, master: string, except: string[]): string[] {
  return [...ctx.observations.values()]
    .filter(
      (obs) =>
        obs.reachable &&
        !except.includes(obs.host) &&
        obs.host !== master &&
        replicatesFrom(obs.replication, master, ctx.config),
    )
    .map((obs) => obs.host);
}

export function refused(detail: string, steps?: string[]): OperationResult {
  return { ok: false, code: 'refused', detail, steps };
}

export function failed(detail: string, steps?: string[]): OperationResult {
  return { ok: false, code: 'failed', detail, steps };
}

/** Journals a decision, a refusal or a note, and logs it with the same event name. */
export function note(
  ctx: Pick<OpContext, 'journal' | 'log'> & { runner?: OpContext['runner'] },
  entry: {
    phase: 'decision' | 'refused' | 'note';
    event: string;
    host?: string;
    role?: string;
    reason: string;
    inputs?: Record<string, unknown>;
    level?: 'info' | 'warn';
  },
): void {
  if (ctx.runner?.dry) {
    // Planning: kept with the plan, journaled by the engine only when the plan changes.
    ctx.runner.planned.push({
      phase: entry.phase,
      event: entry.event,
      host: entry.host,
      role: entry.role,
      reason: entry.reason,
      inputs: entry.inputs,
      outcome: 'dry-run',
    });
    return;
  }
  ctx.journal.append({
    phase: entry.phase,
    event: entry.event,
    host: entry.host,
    role: entry.role,
    reason: entry.reason,
    inputs: entry.inputs,
  });
  const level = entry.level ?? (entry.phase === 'refused' ? 'warn' : 'info');
  ctx.log[level]({ event: entry.event, host: entry.host, role: entry.role }, entry.reason);
}
