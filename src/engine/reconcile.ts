/**
 * Role reconciliation, shared by every trigger: the writer first (failover when the evidence says
 * it is dead, switchover away from an ineligible holder, election, prefer), then the other roles'
 * IPs. Only the decision of which procedure runs is here; the procedures are failover.ts and
 * switchover.ts.
 */
import { droppedWithMaintenance } from '../maintenance/engine-input.js';
import {
  chooseSwitchoverTarget,
  chooseWriterCandidate,
  type CandidateChoice,
} from './candidates.js';
import type { VipCallBound } from '../actuator/types.js';
import type { OpContext } from './context.js';
import type { EngineCore, Trigger } from './core.js';
import { divergedHosts, errantOf, liveErrant } from './errant-tracking.js';
import { runFailover } from './failover.js';
import { hasVip, note } from './operation.js';
import { assignRoles, holderOf, isEligible } from './roles.js';
import { runSwitchover } from './switchover.js';
import { ioConnected, replicatesFrom } from './topology.js';

export interface ReconcileSummary {
  actions: string[];
  refusals: string[];
}

/** Writer first (failover, switchover away from an ineligible holder, election, prefer), then the other roles' IPs. */
export async function reconcileRoles(
  core: EngineCore,
  ctx: OpContext,
  trigger: Trigger,
  operatorHost?: string,
  onlyRoles?: ReadonlySet<string>,
): Promise<ReconcileSummary> {
  const summary: ReconcileSummary = { actions: [], refusals: [] };
  // Maintenance: nothing automatic moves onto (eligibility) or away from (skipped) such a host;
  // the host an operator command names is the operator's to change.
  const frozen = new Set([...core.maintenance].filter((host) => host !== operatorHost));
  ctx = {
    ...ctx,
    dropped: droppedWithMaintenance(
      core.dropped,
      frozen,
      core.state.roles,
      Object.keys(core.config.roles),
    ),
  };
  const writer = holderOf(core.state.roles, core.writerRole);
  if (writer && frozen.has(writer) && !core.observations.get(writer)?.reachable) {
    const reason = `${writer} holds ${core.writerRole} and is in maintenance (an Alertmanager silence): no automatic failover away from it`;
    core.condition('failover.withheld', reason, () =>
      note(core.ctxBase(), {
        phase: 'decision',
        event: 'failover.withheld',
        host: writer,
        role: core.writerRole,
        reason,
        level: 'warn',
      }),
    );
  } else if (
    core.config.roles[core.writerRole] &&
    !(writer && frozen.has(writer)) &&
    (!onlyRoles || onlyRoles.has(core.writerRole))
  )
    await reconcileWriter(core, ctx, trigger, summary);
  const assignment = assignRoles({
    roles: core.config.roles,
    hosts: core.state.hosts,
    current: core.state.roles,
    writerRole: core.writerRole,
    dropped: ctx.dropped,
    pinned: core.pinned,
  });
  // Moves the operator did not ask for are routine: the next cycle makes them again if they fail.
  const routine = trigger === 'operator' ? undefined : routineMoves(core);
  for (const move of assignment.moves) {
    if (
      move.role === core.writerRole ||
      frozen.has(move.from ?? '') ||
      frozen.has(move.to ?? '') ||
      (onlyRoles && !onlyRoles.has(move.role))
    )
      continue;
    const done = await applyMove(
      core,
      ctx,
      move.role,
      move.ip,
      move.from,
      move.to,
      move.reason,
      routine,
    );
    summary.actions.push(done);
  }
  for (const item of assignment.unassigned) {
    if (item.role === core.writerRole) continue;
    core.condition(`unassigned:${item.role}:${item.ip}`, item.reason, () =>
      note(core.ctxBase(), {
        phase: 'note',
        event: 'role.unassigned',
        role: item.role,
        reason: `${item.role} IP ${item.ip} unassigned: ${item.reason}`,
        inputs: { ip: item.ip },
        level: 'warn',
      }),
    );
  }
  return summary;
}

async function reconcileWriter(
  core: EngineCore,
  ctx: OpContext,
  trigger: Trigger,
  summary: ReconcileSummary,
): Promise<void> {
  const role = core.writerRole;
  const roleConfig = core.config.roles[role];
  if (!roleConfig) return;
  const holder = holderOf(core.state.roles, role);
  const eligibility = { hosts: core.state.hosts, writerRole: role, dropped: ctx.dropped };
  if (core.pinned.has(role) && core.pinned.get(role) !== holder && !ctx.runner.dry) {
    // The operator's placement ended (failover, set-offline): prefer applies again.
    core.pinned.delete(role);
    core.syncMaps();
  }
  if (holder === null) {
    const writable = [...core.observations.values()].filter(
      (obs) => obs.reachable && obs.readOnly === false,
    );
    if (writable.length > 0) return; // adopted or refused by the invariant step
    // A host the manager cannot see might be a live writer: electing another would make two.
    const unseen = Object.keys(core.config.hosts).filter(
      (host) => !core.observations.get(host)?.reachable && !core.evidence(host).dead,
    );
    if (unseen.length > 0) {
      const reason = `not electing a writer while ${unseen.join(', ')} cannot be checked (unreachable and not dead by evidence): it might be taking writes`;
      summary.refusals.push(reason);
      core.condition('writer.none', reason, () =>
        note(core.ctxBase(), { phase: 'refused', event: 'writer.none', role, reason }),
      );
      return;
    }
    const choice = chooseWriterCandidate(ctx, []);
    if (!choice.ok) {
      summary.refusals.push(choice.reason);
      core.condition('writer.none', choice.reason, () =>
        note(core.ctxBase(), {
          phase: 'refused',
          event: 'writer.none',
          role,
          reason: `no writer: ${choice.reason}`,
          inputs: { positions: choice.positions },
        }),
      );
      return;
    }
    const result = await runSwitchover(ctx, null, choice.host, {
      force: false,
      reason: `no host holds ${role}: electing ${choice.reason}`,
      waitFor: choice.waitFor,
    });
    (result.ok ? summary.actions : summary.refusals).push(result.detail);
    return;
  }
  if (!core.observations.get(holder)?.reachable) {
    const evidence = core.evidence(holder);
    if (!evidence.dead) {
      summary.refusals.push(evidence.reason);
      core.condition('failover.withheld', evidence.reason, () =>
        note(core.ctxBase(), {
          phase: 'decision',
          event: 'failover.withheld',
          host: holder,
          role,
          reason: evidence.reason,
          inputs: evidence.inputs,
          level: 'warn',
        }),
      );
      return;
    }
    const outcome = await runFailover(
      ctx,
      holder,
      evidence,
      (reason, write) => core.condition('failover.refused', reason, write),
      divergedHosts(core),
    );
    if (outcome.promoted && !ctx.runner.dry) core.state.lastPromotion = outcome.promoted;
    (outcome.result.ok ? summary.actions : summary.refusals).push(outcome.result.detail);
    return;
  }
  if (!isEligible(eligibility, role, holder)) {
    const choice = await switchoverTarget(core, ctx, holder);
    const why =
      core.state.hosts[holder]?.held ??
      (core.dropped.get(holder)?.has(role)
        ? 'dropped by an alert rule'
        : (core.state.hosts[holder]?.state ?? 'unknown'));
    if (!choice.ok) {
      summary.refusals.push(choice.reason);
      core.condition('writer.stuck', choice.reason, () =>
        note(core.ctxBase(), {
          phase: 'refused',
          event: 'switchover.refused',
          host: holder,
          role,
          reason: `${holder} may no longer hold ${role} (${why}) but ${choice.reason}; it stays the writer`,
        }),
      );
      return;
    }
    if (trigger !== 'operator' && core.now() < core.switchoverBackoffUntil) return;
    const result = await runSwitchover(ctx, holder, choice.host, {
      force: false,
      reason: `${holder} may no longer hold ${role} (${why})`,
    });
    if (!result.ok && !ctx.runner.dry) core.backOffSwitchovers();
    (result.ok ? summary.actions : summary.refusals).push(result.detail);
    return;
  }
  const prefer = roleConfig.prefer;
  if (
    trigger === 'monitor' &&
    prefer &&
    prefer !== holder &&
    core.pinned.get(role) !== holder &&
    core.state.hosts[prefer]?.state === 'ONLINE' &&
    isEligible(eligibility, role, prefer) &&
    core.observations.get(prefer)?.reachable &&
    core.observations.get(holder)?.reachable &&
    core.now() >= core.switchoverBackoffUntil &&
    // Never switch back to a host with writes the writer lacks, held or not yet (issue 22).
    errantOf(core, prefer, holder).length === 0
  ) {
    const result = await runSwitchover(ctx, holder, prefer, {
      force: false,
      reason: `${prefer} is the preferred ${role} host and ONLINE again`,
    });
    if (!result.ok && !ctx.runner.dry) core.backOffSwitchovers();
    (result.ok ? summary.actions : summary.refusals).push(result.detail);
  }
}

/**
 * The VIP calls of moves the operator did not ask for (a cycle's, an alert's): each tried once
 * within `bound`; a host whose agent failed one is not called again in the same pass, nor is one
 * whose agent the per-cycle exchange found not answering. A reader IP moved onto a host whose
 * link was just cut otherwise held the cycle for the agent client's every retry (3 x 3 s by
 * default) per IP, and with it the checks that find the writer dead: the failover came 20 s
 * late. Nothing is lost by the bound: an IP whose add failed is left unassigned and the next
 * cycle moves it again, and the per-cycle exchange takes an IP the agent did add after all away
 * from it.
 */
export interface RoutineMoves {
  bound: VipCallBound;
  /** Hosts whose agent failed a VIP call in this pass. */
  agentsFailed: Set<string>;
}

export function routineMoves(core: EngineCore): RoutineMoves {
  const { agent_timeout: agentTimeout } = core.config.actuator;
  return {
    bound: {
      timeoutMs: Math.min(agentTimeout, Math.max(1000, core.config.monitor.interval)),
      retries: 0,
    },
    agentsFailed: new Set(),
  };
}

export async function applyMove(
  core: EngineCore,
  ctx: OpContext,
  role: string,
  ip: string,
  from: string | null,
  to: string | null,
  reason: string,
  routine?: RoutineMoves,
): Promise<string> {
  const runner = ctx.runner;
  // What is wrong with a host's agent, for a move that should not call it now.
  const agentSilent = (host: string): string | undefined =>
    !core.agents.answering(host)
      ? 'does not answer'
      : routine?.agentsFailed.has(host)
        ? 'failed a VIP call a moment ago'
        : undefined;
  const toSilent = to && hasVip(ip) && routine ? agentSilent(to) : undefined;
  // Journaled once while it lasts (the status's conditions show it): the next cycles find the
  // same unassigned IP and the same silent host.
  const deferAdd = (target: string, silent: string) =>
    core.condition(
      `vip.add_deferred:${role}:${ip}`,
      `it would go to ${target}, whose agent ${silent}`,
      () =>
        note(ctx, {
          phase: 'note',
          event: 'vip.add_deferred',
          host: target,
          role,
          reason: `${role} IP ${ip} would go to ${target}, whose agent ${silent}: left unassigned, the next cycle moves it again`,
          inputs: { ip },
          level: 'warn',
        }),
    );
  if (to && toSilent && from === null) {
    deferAdd(to, toSilent);
    return `${role} ${ip} not moved to ${to}: its agent ${toSilent}`;
  }
  note(ctx, {
    phase: 'decision',
    event: 'role.move',
    host: to ?? from ?? undefined,
    role,
    reason: `${role} ${ip}: ${from ?? '(none)'} -> ${to ?? '(none)'}: ${reason}`,
    inputs: { ip, from, to },
  });
  const fromSilent = from ? agentSilent(from) : undefined;
  if (from && hasVip(ip) && fromSilent) {
    note(ctx, {
      phase: 'note',
      event: 'vip.remove_deferred',
      host: from,
      role,
      reason: `${role} IP ${ip} leaves ${from}, whose agent ${fromSilent}: the per-cycle exchange removes it on first contact`,
      inputs: { ip },
    });
  } else if (from && hasVip(ip)) {
    const removed = await runner.attempt(
      {
        event: 'vip.remove',
        host: from,
        role,
        reason: `${role} IP ${ip} leaves ${from}`,
        inputs: { ip },
      },
      (actuator) => actuator.removeVip(from, ip, routine?.bound),
    );
    if (!removed.ok) routine?.agentsFailed.add(from);
  }
  let holder = to;
  if (to && toSilent) {
    // Left unassigned, as after a failed add, without waiting for an agent known not to answer.
    deferAdd(to, toSilent);
    holder = null;
  } else if (to && hasVip(ip)) {
    const added = await runner.attempt(
      {
        event: 'vip.add',
        host: to,
        role,
        reason: `${role} IP ${ip} goes to ${to}`,
        inputs: { ip },
      },
      (actuator) => actuator.addVip(to, ip, routine?.bound),
    );
    // Left unassigned so the next cycle tries again.
    if (!added.ok) {
      holder = null;
      routine?.agentsFailed.add(to);
    }
  }
  if (!runner.dry)
    core.state.roles = {
      ...core.state.roles,
      [role]: { ...(core.state.roles[role] ?? {}), [ip]: holder },
    };
  return `${role} ${ip} ${from ?? '(none)'} -> ${holder ?? '(none)'}`;
}

/**
 * Target of a planned switchover away from the live writer (see chooseSwitchoverTarget). Errant
 * transactions seen in the cycle's observations are confirmed by live reads before they reject a
 * host: right after a switchover the observations still show the new writer as the replica it
 * was a moment before, behind the old writer's last transactions.
 */
export async function switchoverTarget(
  core: EngineCore,
  ctx: OpContext,
  writer: string,
): Promise<CandidateChoice> {
  const errant = new Map<string, string[]>();
  for (const host of core.config.roles[core.writerRole]?.hosts ?? []) {
    if (host === writer || errantOf(core, host, writer).length === 0) continue;
    const live = await liveErrant(core, host, writer);
    errant.set(host, live.ok ? live.errant : [`unknown: ${live.reason}`]);
  }
  return chooseSwitchoverTarget(
    ctx,
    writer,
    [],
    (host) => errant.get(host) ?? [],
    (host) => {
      const replication = core.observations.get(host)?.replication;
      return (
        replication !== undefined &&
        replicatesFrom(replication, writer, core.config) &&
        ioConnected(replication)
      );
    },
  );
}
