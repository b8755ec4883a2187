/**
 * The analysis: a pure function from one observed cluster to named situations, the plan the
 * engine would run for the writer role, and what stops it. It decides nothing itself where the
 * engine has a rule: the evidence rule (writerDeathEvidence), the candidate choice
 * (chooseWriterCandidate), eligibility (isEligible) and maintenance (droppedWithMaintenance) are
 * the engine's own functions, and every refusal the engine's last cycle kept as a lasting
 * condition is shown in the engine's own words. So `why` cannot tell a different story from the
 * one the engine acts on.
 */
import type { Mode } from '../config/schema.js';
import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { EngineConfig } from '../engine/context.js';
import {
  chooseWriterCandidate,
  heldOnly,
  planCatchUp,
  type CandidateChoice,
} from '../engine/candidates.js';
import { writerDeathEvidence, type Evidence, type ObserverView } from '../engine/evidence.js';
import { isErrantHold } from '../engine/errant-holds.js';
import { hasVip } from '../engine/operation.js';
import { holderOf, isEligible } from '../engine/roles.js';
import { droppedWithMaintenance } from '../maintenance/engine-input.js';
import type { GtidOps } from '../mysql/gtid.js';
import { buildWriterPlan } from '../engine/plan/writer-plan.js';
import { conditionCoverage } from './refusals.js';
import type { Analysis, Blocker, Plan, Situation } from './types.js';

/** What the engine's last cycle had: observations, state and its own memory between cycles. */
export interface ClusterSnapshot {
  at: number;
  config: Pick<
    EngineConfig,
    'cluster' | 'hosts' | 'roles' | 'monitor' | 'lease' | 'failover' | 'hooks'
  >;
  writerRole: string;
  state: ClusterState;
  observations: ReadonlyMap<string, HostObservation>;
  gtid: GtidOps;
  /** Whether this run would act, plan only (passive, follower) or defer (manual), and why. */
  disposition: { kind: 'act' | 'plan' | 'defer'; reason: string };
  /** false while triggers.monitor is off and the alerting pipeline is up: only alerts act. */
  monitorDecides: boolean;
  /** Hosts an Alertmanager silence holds automation off, with the window when known. */
  maintenance: ReadonlyMap<string, { endsAt?: string; silence?: string; comment?: string }>;
  dropped: ReadonlyMap<string, ReadonlySet<string>>;
  pinned: ReadonlyMap<string, string>;
  /** Each host's agent as last heard from (hosts without one are absent). */
  agents: ReadonlyMap<
    string,
    { answering: boolean; leaseLapsed: boolean; held?: readonly string[] }
  >;
  /** The other hosts' agents' views of the writer, for the evidence rule (absent: no agents). */
  observerViews?: ReadonlyMap<string, ObserverView>;
  /** Manager clock: start of the manager's current run of failed checks, per host. */
  lostSince: ReadonlyMap<string, number>;
  /** Errant transactions confirmed in two cycles (host -> GTID ranges). */
  errant: ReadonlyMap<string, readonly string[]>;
  /** Lasting conditions the engine journaled and still sees (key -> its reason). */
  conditions: ReadonlyMap<string, string>;
  /** A failover waiting out the old writer's lease (invariant 7), while it waits. */
  leaseWait?: { writer: string; since: number; deadline: number; reason: string };
  /** The old writer's agent released its lease but could not prove its fence. */
  fenceUnproved?: { host: string; at: number; reason: string };
  /** The manager lost the writer while other hosts still reach it. */
  managerPathBroken: boolean;
  /** Automatic switchovers wait until then after a failed one. */
  switchoverBackoffUntil: number;
}

export function analyze(snapshot: ClusterSnapshot, options: { host?: string } = {}): Analysis {
  const role = snapshot.writerRole;
  const writer = holderOf(snapshot.state.roles, role);
  const situations: Situation[] = [];
  const blockers: Blocker[] = [];
  const add = (situation: Situation) => situations.push(situation);
  const block = (blocker: Blocker) => {
    if (!blockers.some((known) => known.kind === blocker.kind && known.detail === blocker.detail))
      blockers.push(blocker);
  };
  const iso = (ms: number) => new Date(ms).toISOString();
  const obsOf = (host: string) => snapshot.observations.get(host);
  const recordOf = (host: string) => snapshot.state.hosts[host];
  // Maintenance as the engine folds it into eligibility (reconcile.ts).
  const frozen = new Set(snapshot.maintenance.keys());
  const dropped = droppedWithMaintenance(
    snapshot.dropped,
    frozen,
    snapshot.state.roles,
    Object.keys(snapshot.config.roles),
  );
  const candidateInput = {
    config: snapshot.config,
    writerRole: role,
    state: snapshot.state,
    observations: snapshot.observations,
    gtid: snapshot.gtid,
    dropped,
  };
  const evidenceOf = (host: string): Evidence =>
    writerDeathEvidence(host, {
      config: snapshot.config,
      state: snapshot.state,
      observations: snapshot.observations,
      agents: snapshot.observerViews,
      lostSince: snapshot.lostSince.get(host),
    });

  // ------------------------------------------------------------ the manager's own situation
  const mode: Mode = snapshot.state.mode;
  if (mode === 'manual')
    add({
      name: 'manual_mode',
      summary: 'manual mode: only operator commands act',
      evidence: { mode, reason: snapshot.state.modeReason },
    });
  if (mode === 'passive')
    add({
      name: 'passive_mode',
      summary: `passive mode: the engine decides and journals, but does not act${snapshot.state.modeReason ? ` (${snapshot.state.modeReason})` : ''}`,
      evidence: { mode, reason: snapshot.state.modeReason },
    });
  if (snapshot.disposition.kind === 'plan' && mode !== 'passive')
    add({
      name: 'not_leader',
      summary: `this manager does not act: ${snapshot.disposition.reason}`,
      evidence: { disposition: snapshot.disposition.reason },
    });
  for (const [host, window] of snapshot.maintenance)
    add({
      name: 'maintenance',
      host,
      summary: `${host} is in maintenance${window.endsAt ? ` until ${window.endsAt}` : ''}: no automatic failover away from it or role change for it`,
      evidence: { ...window },
    });
  const operation = snapshot.state.operation;
  if (operation)
    add({
      name: 'operation_in_progress',
      host: operation.to,
      summary: `${operation.kind} of ${operation.role} ${operation.from ?? '(none)'} -> ${operation.to} at step ${operation.step}`,
      evidence: { ...operation, startedAt: iso(operation.startedAt) },
    });
  if (snapshot.leaseWait) {
    const wait = snapshot.leaseWait;
    add({
      name: 'lease_wait',
      host: wait.writer,
      summary: `waiting until ${wait.writer}'s writer lease has certainly lapsed (until ${iso(wait.deadline)}) before promoting another host`,
      evidence: { since: iso(wait.since), deadline: iso(wait.deadline), reason: wait.reason },
    });
    block({
      kind: 'lease_wait',
      host: wait.writer,
      rule: 'invariant 7',
      detail: wait.reason,
      until: iso(wait.deadline),
    });
  }
  if (snapshot.fenceUnproved)
    add({
      name: 'unproved_fence',
      host: snapshot.fenceUnproved.host,
      summary: `${snapshot.fenceUnproved.host}'s fence was not proved: it never counts, the lease is waited out`,
      evidence: { at: iso(snapshot.fenceUnproved.at), reason: snapshot.fenceUnproved.reason },
    });

  // ------------------------------------------------------------ writable hosts (invariant 1)
  const writable = [...snapshot.observations.values()]
    .filter((obs) => obs.reachable && obs.readOnly === false)
    .map((obs) => obs.host);
  if (writable.length > 1)
    add({
      name: 'two_writable_hosts',
      summary: `${writable.join(', ')} are all writable (read_only=OFF)`,
      evidence: { writable, writer },
    });
  for (const host of writable)
    if (writer && host !== writer)
      add({
        name: 'stray_writable_host',
        host,
        summary: `${host} is writable but ${writer} holds ${role}: it is set read_only every cycle`,
        evidence: { writer },
      });

  // ------------------------------------------------------------ the writer
  let plan: Plan | undefined;
  const writerInMaintenance = writer !== null && frozen.has(writer);
  if (writer === null) {
    add({
      name: 'no_writer',
      summary: `no host holds ${role}`,
      evidence: { writable },
    });
    if (writable.length === 0) {
      // Mirrors reconcileWriter: a host the manager cannot see might be a live writer.
      const unseen = Object.keys(snapshot.config.hosts).filter(
        (host) => !obsOf(host)?.reachable && !evidenceOf(host).dead,
      );
      const choice = chooseWriterCandidate(candidateInput, []);
      plan = writerPlan(snapshot, 'election', null, choice, `no host holds ${role}`);
      if (unseen.length > 0)
        block({
          kind: 'evidence_missing',
          rule: 'invariant 1',
          from: unseen,
          detail: `not electing a writer while ${unseen.join(', ')} cannot be checked (unreachable and not dead by evidence): it might be taking writes`,
        });
      else candidateBlockers(snapshot, choice, block, []);
    }
  } else if (!obsOf(writer)?.reachable) {
    const evidence = evidenceOf(writer);
    const agent = snapshot.agents.get(writer);
    const others = Object.keys(snapshot.config.hosts).filter(
      (host) => host !== writer && !obsOf(host)?.reachable,
    );
    const observers = (evidence.inputs.observers ?? []) as Array<{
      host: string;
      says: string;
      why: string;
    }>;
    const contradicting = observers.filter((verdict) => verdict.says === 'alive');
    // The server does not answer (a timeout, not a refusal) while its host's agent does and no
    // other host reaches the server either: the host is up and mysqld hangs (SIGSTOP, a stuck
    // disk), not a partition. Named beside dead_writer too: the evidence may already say dead.
    if (
      obsOf(writer)?.refusal === undefined &&
      agent?.answering &&
      !agent.leaseLapsed &&
      contradicting.length === 0
    )
      add({
        name: 'hung_writer',
        host: writer,
        summary: `${writer}'s server does not answer (${obsOf(writer)?.error ?? 'no answer'}) while its agent does: the server hangs`,
        evidence: { error: obsOf(writer)?.error, agentAnswering: true },
      });
    if (evidence.dead) {
      add({
        name: others.length > 0 ? 'dead_writer_and_some_replicas' : 'dead_writer',
        host: writer,
        summary:
          others.length > 0
            ? `writer ${writer} is dead and ${others.join(', ')} ${others.length === 1 ? 'is' : 'are'} down too: ${evidence.reason}`
            : `writer ${writer} is dead: ${evidence.reason}`,
        evidence: { ...evidence.inputs, down: others },
      });
    } else {
      if (snapshot.managerPathBroken || contradicting.length > 0)
        add({
          name: 'manager_path_broken',
          host: writer,
          summary: evidence.reason,
          evidence: evidence.inputs,
        });
      else
        add({
          name: 'unreachable_writer',
          host: writer,
          summary: `the manager cannot reach writer ${writer}, but it is not dead by evidence: ${evidence.reason}`,
          evidence: evidence.inputs,
        });
      if (contradicting.length > 0)
        block({
          kind: 'evidence_contradicts',
          host: writer,
          rule: 'invariant 4',
          from: contradicting.map((verdict) => verdict.host),
          detail: evidence.reason,
        });
      else
        block({
          kind: 'evidence_missing',
          host: writer,
          rule: 'invariant 4',
          from:
            recordOf(writer)?.state !== 'HARD_OFFLINE' && obsOf(writer)?.refusal !== 'refused'
              ? ['manager']
              : observers.filter((verdict) => verdict.says !== 'dead').map((v) => v.host),
          detail: evidence.reason,
        });
    }
    if (writerInMaintenance)
      block({
        kind: 'maintenance',
        host: writer,
        rule: 'maintenance (an Alertmanager silence)',
        detail: `${writer} holds ${role} and is in maintenance: no automatic failover away from it`,
        until: snapshot.maintenance.get(writer)?.endsAt,
      });
    if (evidence.dead || snapshot.leaseWait || operation?.kind === 'failover') {
      const choice = failoverChoice(snapshot, candidateInput, writer);
      plan = writerPlan(snapshot, 'failover', writer, choice, evidence.reason);
      if (evidence.dead && !writerInMaintenance)
        candidateBlockers(snapshot, choice, block, [writer]);
    }
  } else {
    const eligibility = { hosts: snapshot.state.hosts, writerRole: role, dropped };
    if (agentLeaseLapsed(snapshot, writer))
      add({
        name: 'isolated_writer',
        host: writer,
        summary: `${writer} holds ${role} but its agent's lease lapsed (it reaches no majority of the voters): it fenced itself`,
        evidence: { agent: snapshot.agents.get(writer) },
      });
    if (snapshot.conditions.has('writer.no_lease'))
      add({
        name: 'writer_without_lease',
        host: writer,
        summary: snapshot.conditions.get('writer.no_lease') as string,
        evidence: { condition: snapshot.conditions.get('writer.no_lease') },
      });
    if (!isEligible(eligibility, role, writer) && !writerInMaintenance) {
      const why =
        recordOf(writer)?.held ??
        (snapshot.dropped.get(writer)?.has(role)
          ? 'dropped by an alert rule'
          : (recordOf(writer)?.state ?? 'unknown'));
      add({
        name: 'ineligible_writer',
        host: writer,
        summary: `${writer} may no longer hold ${role} (${why})`,
        evidence: { state: recordOf(writer)?.state, held: recordOf(writer)?.held },
      });
      const choice = chooseWriterCandidate(candidateInput, [writer]);
      plan = writerPlan(
        snapshot,
        'switchover',
        writer,
        choice,
        `${writer} may no longer hold ${role} (${why})`,
      );
      if (snapshot.at < snapshot.switchoverBackoffUntil)
        block({
          kind: 'backoff',
          rule: 'automatic switchovers wait after a failed one',
          detail: `the last automatic switchover failed: the next is not tried before ${iso(snapshot.switchoverBackoffUntil)}`,
          until: iso(snapshot.switchoverBackoffUntil),
        });
    } else {
      const prefer = snapshot.config.roles[role]?.prefer;
      if (
        prefer &&
        prefer !== writer &&
        snapshot.pinned.get(role) !== writer &&
        recordOf(prefer)?.state === 'ONLINE' &&
        isEligible(eligibility, role, prefer) &&
        obsOf(prefer)?.reachable &&
        (snapshot.errant.get(prefer)?.length ?? 0) === 0
      ) {
        const choice: CandidateChoice = {
          ok: true,
          host: prefer,
          reason: `${prefer} is the preferred ${role} host`,
          positions: [],
        };
        plan = writerPlan(
          snapshot,
          'switchover',
          writer,
          choice,
          `${prefer} is the preferred ${role} host and ONLINE again`,
        );
        if (snapshot.at < snapshot.switchoverBackoffUntil)
          block({
            kind: 'backoff',
            rule: 'automatic switchovers wait after a failed one',
            detail: `the last automatic switchover failed: the next is not tried before ${iso(snapshot.switchoverBackoffUntil)}`,
            until: iso(snapshot.switchoverBackoffUntil),
          });
      }
    }
  }

  // ------------------------------------------------------------ the other hosts
  const writerHosts = new Set(snapshot.config.roles[role]?.hosts ?? []);
  for (const host of Object.keys(snapshot.config.hosts)) {
    const obs = obsOf(host);
    const record = recordOf(host);
    if (host !== writer && record?.state === 'HARD_OFFLINE')
      add({
        name: 'host_down',
        host,
        summary: `${host} is HARD_OFFLINE: ${record.reason}`,
        evidence: { error: obs?.error, failures: record.failures },
      });
    if (host !== writer && obs?.reachable) {
      const replication = obs.replication;
      if (
        record?.state === 'REPLICATION_FAIL' ||
        (replication && (replication.lastSqlError !== '' || !replication.sqlRunning))
      )
        add({
          name: 'broken_replica',
          host,
          summary: `${host}'s replication is broken${replication?.lastSqlError ? `: ${replication.lastSqlError}` : replication?.lastIoError ? `: ${replication.lastIoError}` : ''}`,
          evidence: {
            state: record?.state,
            ioRunning: replication?.ioRunning,
            sqlRunning: replication?.sqlRunning,
            lastIoError: replication?.lastIoError,
            lastSqlError: replication?.lastSqlError,
          },
        });
      const lag = obs.heartbeatLagSeconds;
      if (
        record?.state === 'REPLICATION_DELAY' ||
        (typeof lag === 'number' && lag * 1000 > snapshot.config.monitor.max_lag)
      )
        add({
          name: 'lagging_replica',
          host,
          summary: `${host} lags ${typeof lag === 'number' ? `${lag.toFixed(1)} s` : '(unknown)'}, more than ${snapshot.config.monitor.max_lag / 1000} s`,
          evidence: { lagSeconds: lag, maxLagMs: snapshot.config.monitor.max_lag },
        });
    }
    const errant = snapshot.errant.get(host) ?? [];
    if (errant.length > 0 || isErrantHold(record?.held))
      add({
        name: 'errant_transactions',
        host,
        summary: `${host} has transactions the writer lacks${errant.length > 0 ? `: ${errant.join(',')}` : ` (${record?.held})`}`,
        evidence: { errant, held: record?.held },
      });
    if (host !== writer && isHeld(record) && !isErrantHold(record?.held))
      add({
        name: writerHosts.has(host) ? 'held_candidate' : 'held_host',
        host,
        summary: `${host} is held for the operator (${record?.held ?? record?.state}): set-online lets it take roles again${writerHosts.has(host) ? `, ${role} included` : ''}`,
        evidence: { state: record?.state, held: record?.held },
      });
    const agent = snapshot.agents.get(host);
    if (agent?.answering && agent.held) {
      const desired = Object.values(snapshot.state.roles)
        .flatMap((ips) => Object.entries(ips))
        .filter(([ip, holder]) => holder === host && hasVip(ip))
        .map(([ip]) => ip)
        .sort();
      const held = [...agent.held].sort();
      if (desired.join(',') !== held.join(','))
        add({
          name: 'vip_mismatch',
          host,
          summary: `${host} holds ${held.join(', ') || 'no VIP'} but its roles give it ${desired.join(', ') || 'none'} (the next exchange converges it)`,
          evidence: { desired, held },
        });
    }
  }

  // ------------------------------------------------------------ the engine's own refusals
  for (const [key, reason] of snapshot.conditions) {
    if (key.startsWith('unassigned:') || key.startsWith('vip.add_deferred:')) {
      const [, unassignedRole, ip] = key.split(':');
      add({
        name: 'role_unassigned',
        summary: `${unassignedRole} IP ${ip} is unassigned: ${reason}`,
        evidence: { role: unassignedRole, ip, reason },
      });
      continue;
    }
    if (key.startsWith('replica.follow:')) {
      const host = key.slice('replica.follow:'.length);
      add({
        name: 'stray_replica',
        host,
        summary: `${host} ${reason}`,
        evidence: { reason },
      });
      continue;
    }
    if (key === 'writer.split_brain' && writable.length <= 1)
      add({
        name: 'two_writable_hosts',
        summary: reason,
        evidence: { condition: reason },
      });
    if (key === 'writer.lease_lapsed' && !situations.some((s) => s.name === 'isolated_writer'))
      add({
        name: 'isolated_writer',
        host: writer ?? undefined,
        summary: reason,
        evidence: { condition: reason },
      });
    // The engine's words, shown as they were journaled: nothing here can disagree with them.
    const coverage = conditionCoverage(key);
    // Already shown with who is missing or contradicting (invariant 4), or as the maintenance.
    if (
      key === 'failover.withheld' &&
      blockers.some(
        (b) => b.rule === 'invariant 4' || (b.kind === 'maintenance' && b.host === writer),
      )
    )
      continue;
    block({ kind: 'refusal', rule: coverage?.rule ?? key, detail: reason });
  }

  // ------------------------------------------------------------ whether the plan would run
  if (plan) {
    if (snapshot.disposition.kind === 'defer')
      block({ kind: 'mode', rule: 'mode: manual', detail: snapshot.disposition.reason });
    else if (snapshot.disposition.kind === 'plan')
      block({
        kind: mode === 'passive' ? 'mode' : 'not_leader',
        rule: mode === 'passive' ? 'mode: passive' : 'ha: one leader acts',
        detail: snapshot.disposition.reason,
      });
    if (!snapshot.monitorDecides)
      block({
        kind: 'alerts_only',
        rule: 'triggers.monitor: false',
        detail:
          'the monitor does not decide while the alerting pipeline is up: an alert rule must fire',
      });
    if (operation && !snapshot.leaseWait)
      block({
        kind: 'operation_in_progress',
        rule: 'one operation at a time',
        detail: `${operation.kind} ${operation.from ?? '(none)'} -> ${operation.to} at step ${operation.step}`,
      });
  }
  const acts = plan !== undefined && plan.to !== undefined && blockers.length === 0;
  const analysis: Analysis = {
    cluster: snapshot.config.cluster,
    at: iso(snapshot.at),
    mode,
    writer,
    situations,
    ...(plan ? { plan } : {}),
    acts,
    blockers,
  };
  return options.host ? narrow(analysis, options.host) : analysis;
}

/** `why HOST`: what is about the host; the plan stays when the host takes part in it. */
function narrow(analysis: Analysis, host: string): Analysis {
  const about = (item: { host?: string; from?: string[] }) =>
    item.host === undefined || item.host === host || (item.from ?? []).includes(host);
  const inPlan =
    analysis.plan &&
    (analysis.plan.from === host ||
      analysis.plan.to === host ||
      analysis.plan.steps.some((step) => step.host === host));
  return {
    ...analysis,
    host,
    situations: analysis.situations.filter((situation) => situation.host === host),
    blockers: analysis.blockers.filter(about),
    plan: inPlan ? analysis.plan : undefined,
  };
}

/**
 * The candidate runFailover (failover.ts) ends up with: the strict choice; else one that catches
 * up from the most advanced host (planCatchUp); else, with failover.promote_held, a host held only
 * for a restart or flapping that has everything (never one with transactions the writer lacked).
 */
function failoverChoice(
  snapshot: ClusterSnapshot,
  input: Parameters<typeof chooseWriterCandidate>[0],
  writer: string,
): CandidateChoice {
  const strict = chooseWriterCandidate(input, [writer]);
  if (strict.ok) return strict;
  const catchUp = planCatchUp(input, [writer], strict.positions);
  if (catchUp)
    return {
      ok: true,
      host: catchUp.candidate,
      reason: catchUp.reason,
      positions: strict.positions,
    };
  if (!snapshot.config.failover.promote_held) return strict;
  const diverged = [...snapshot.errant]
    .filter(([, ranges]) => ranges.length > 0)
    .map(([host]) => host);
  const relaxed = chooseWriterCandidate(input, [writer, ...diverged], { allowHeld: true });
  if (!relaxed.ok || !heldOnly(input, relaxed.host)) return strict;
  return {
    ...relaxed,
    reason: `${relaxed.reason}; promoted although held (${snapshot.state.hosts[relaxed.host]?.held}): failover.promote_held`,
  };
}

/** Waiting for the operator: held (flapped, restarted, errant), or back from an outage and AWAITING_RECOVERY. */
function isHeld(record: ClusterState['hosts'][string] | undefined): boolean {
  return record?.held !== undefined || record?.state === 'AWAITING_RECOVERY';
}

function agentLeaseLapsed(snapshot: ClusterSnapshot, host: string): boolean {
  return snapshot.agents.get(host)?.leaseLapsed === true;
}

/** Why the candidate choice found no host: held, errant, in maintenance, or behind (invariant 2). */
function candidateBlockers(
  snapshot: ClusterSnapshot,
  choice: CandidateChoice,
  block: (blocker: Blocker) => void,
  exclude: string[],
): void {
  if (choice.ok) {
    if (snapshot.errant.get(choice.host)?.length)
      block({
        kind: 'errant_host',
        host: choice.host,
        rule: 'invariant 2 (issue 22: never promote a host with writes the writer lacks)',
        detail: `${choice.host} has transactions the old writer lacked: ${snapshot.errant.get(choice.host)?.join(',')}`,
      });
    return;
  }
  const role = snapshot.writerRole;
  for (const host of snapshot.config.roles[role]?.hosts ?? []) {
    if (exclude.includes(host)) continue;
    const record = snapshot.state.hosts[host];
    if (snapshot.maintenance.has(host)) {
      block({
        kind: 'maintenance',
        host,
        rule: 'maintenance (an Alertmanager silence)',
        detail: `${host} is in maintenance: no role is moved onto it`,
        until: snapshot.maintenance.get(host)?.endsAt,
      });
    } else if (snapshot.errant.get(host)?.length || isErrantHold(record?.held)) {
      block({
        kind: 'errant_host',
        host,
        rule: 'invariant 2 (issue 22: never promote a host with writes the writer lacks)',
        detail: `${host} has transactions the writer lacks${record?.held ? ` (${record.held})` : ''}`,
      });
    } else if (isHeld(record)) {
      block({
        kind: 'held_candidate',
        host,
        rule: snapshot.config.failover.promote_held
          ? 'held hosts take no role until set-online (failover.promote_held takes only hosts held for a restart or flapping)'
          : 'held hosts take no role until set-online (failover.promote_held: false)',
        detail: `${host} is held (${record?.held ?? record?.state}): \`switchyard set-online ${host}\` lets it take ${role}`,
      });
    }
  }
  block({
    kind: 'no_candidate',
    rule: 'invariant 2',
    detail: choice.reason,
  });
}

/** The plan the engine would run: the same builder the executor runs (src/engine/plan/). */
function writerPlan(
  snapshot: ClusterSnapshot,
  kind: Plan['kind'],
  from: string | null,
  choice: CandidateChoice,
  reason: string,
): Plan {
  const to = choice.ok ? choice.host : undefined;
  return buildWriterPlan({
    config: snapshot.config,
    kind,
    role: snapshot.writerRole,
    from,
    ...(to ? { to } : {}),
    ...(choice.ok && choice.waitFor ? { waitFor: choice.waitFor } : {}),
    reason: choice.ok ? `${reason}; ${choice.reason}` : reason,
    followers: Object.keys(snapshot.config.hosts).filter(
      (host) =>
        host !== from && host !== to && snapshot.config.hosts[host]?.replica_of !== undefined,
    ),
  });
}
