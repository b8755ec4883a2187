import type { Plan, PlanStep } from '../../analysis/types.js';
import type { EngineConfig } from '../context.js';
import { hasVip } from '../operation.js';

export interface WriterPlanInput {
  config: Pick<EngineConfig, 'hooks' | 'roles' | 'lease'>;
  /** failover: the writer is dead; switchover: it moves away from a live writer; election: none holds it. */
  kind: Plan['kind'];
  role: string;
  from: string | null;
  /** Absent when no host can take the role. */
  to?: string;
  /** What the target must apply before promotion (its relay log), when that is known. */
  waitFor?: string;
  reason: string;
  /** The hosts that will replicate from the new writer (beside the old writer after a switchover). */
  followers: string[];
}

/**
 * The one writer-move plan: failover, switchover and election differ only in how the old writer
 * is kept from writing (a proved fence or a lapsed lease) and what the target must apply first;
 * from the writer lease on, every move runs the same tail (promote, route, repoint). `why` shows
 * this plan and the executor runs it, step by step, in this order.
 */
export function buildWriterPlan(input: WriterPlanInput): Plan {
  const { config, kind, role, from, to } = input;
  const target = to ?? '(no candidate)';
  const hooks = config.hooks;
  const hookKind = kind === 'failover' ? 'failover' : 'switchover';
  const preHook = kind === 'failover' ? hooks?.pre_failover : hooks?.pre_switchover;
  const postHook = kind === 'failover' ? hooks?.post_failover : hooks?.post_switchover;
  const ips = (config.roles[role]?.ips ?? []).filter(hasVip);
  const steps: PlanStep[] = [];
  if (preHook?.length)
    steps.push({ step: 'pre_hook', detail: `run pre_${hookKind}: ${preHook.join(' ')}` });
  if (kind === 'failover' && from) {
    steps.push({ step: 'stop_replica_io', detail: `replicas of ${from} stop fetching from it` });
    if (input.waitFor)
      steps.push({
        step: 'catch_up',
        host: to,
        detail: `${target} applies its relay log up to ${input.waitFor}`,
      });
    steps.push({
      step: 'stop_replication',
      host: to,
      detail: `${target} stops replicating from ${from}`,
    });
    steps.push({
      step: 'wait_for_lease',
      host: from,
      detail: `${from}'s agent fences on request (proved), else its writer lease (${config.lease} ms) is waited out`,
    });
    steps.push({
      step: 'final_catch_up',
      host: to,
      detail: `if ${from} was fenced with its server up, ${target} first replicates whatever ${from} has that it lacks (${from}'s position read after the fence)`,
    });
  } else if (from) {
    steps.push({
      step: 'fence',
      host: from,
      detail: `${from}: read_only=ON, client connections killed, ${role} VIP removed; proved by reading read_only back`,
    });
    steps.push({
      step: 'catch_up',
      host: to,
      detail: `${target} applies everything ${from} wrote`,
    });
  } else if (input.waitFor) {
    steps.push({
      step: 'catch_up',
      host: to,
      detail: `${target} applies its relay log up to ${input.waitFor}`,
    });
  }
  steps.push({ step: 'grant_lease', host: to, detail: `${target}'s agent takes the writer lease` });
  steps.push({ step: 'promote', host: to, detail: `${target}: read_only=OFF` });
  steps.push({
    step: 'route',
    host: to,
    detail:
      ips.length > 0 ? `${role} VIP ${ips.join(', ')} to ${target}` : `${role} routes to ${target}`,
  });
  const followers = [...(kind === 'switchover' && from ? [from] : []), ...input.followers];
  steps.push({
    step: 'repoint',
    detail:
      followers.length > 0
        ? `${followers.join(', ')} replicate from ${target}; any other replica of ${role} follows too`
        : `every replica of ${role} follows ${target}`,
  });
  if (postHook?.length)
    steps.push({ step: 'post_hook', detail: `run post_${hookKind}: ${postHook.join(' ')}` });
  return { kind, role, from, ...(to ? { to } : {}), reason: input.reason, steps };
}
