/**
 * Trigger: the monitor cycle. Takes the monitor's observations, keeps invariant 1 (read_only) every
 * cycle, lets the writer fail over or move when the evidence says so, and reports what it found
 * (errant transactions, metrics, the agents' VIP sets).
 */
import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import { setOnline as setOnlineRecord } from '../monitor/state-machine.js';
import { REPLICATION_ALERTS } from './alerts.js';
import type { OpContext } from './context.js';
import type { EngineCore } from './core.js';
import { keepErrantHostsWaiting } from './errant-holds.js';
import { reportErrant } from './errant-tracking.js';
import { keepReplicasOnWriter } from './follow-writer.js';
import { planReadOnly } from './invariants.js';
import { note, setHolder } from './operation.js';
import { reconcileRoles, routineMoves } from './reconcile.js';
import { recoverOperation } from './recovery.js';
import { holderOf } from './roles.js';
import { reconcileStartup } from './startup-reconcile.js';
import type { JournalDraft } from './steps.js';

/** Called by the monitor loop after each cycle. Returns the state to persist and use next. */
export async function runCycle(
  core: EngineCore,
  observations: HostObservation[],
  clusterState: ClusterState,
): Promise<ClusterState> {
  const before = structuredClone(core.state.hosts);
  core.mergeIncoming(clusterState);
  core.observations = new Map(observations.map((obs) => [obs.host, obs]));
  for (const obs of observations) {
    if (obs.serverId !== undefined) core.serverIds.set(obs.host, obs.serverId);
    if (obs.reachable) core.lostSince.delete(obs.host);
    else if (!core.lostSince.has(obs.host)) core.lostSince.set(obs.host, obs.at);
  }
  keepErrantHostsWaiting(core, before);
  if (!core.started) await reconcileStartup(core);
  core.conditionsThisCycle = new Set();
  readmitWriterSeenByOthers(core);
  liftWriterReplicationDrops(core);
  await decideCycle(core);
  const writer = holderOf(core.state.roles, core.writerRole);
  core.pathBroken =
    writer !== null &&
    !core.observations.get(writer)?.reachable &&
    /still see/.test(core.evidence(writer).reason);
  if (core.pathBroken && writer) core.seenByOthersWhileLost.add(writer);
  core.options.metrics?.managerPathBroken.set(core.pathBroken ? 1 : 0);
  for (const key of [...core.conditions.keys()])
    if (!core.conditionsThisCycle.has(key)) core.conditions.delete(key);
  // The promotion point only describes the writer it promoted; once the writer moved on, its
  // old writer's later writes (made as a legitimate writer) must not look errant.
  if (
    core.state.lastPromotion &&
    holderOf(core.state.roles, core.writerRole) !== core.state.lastPromotion.host
  )
    delete core.state.lastPromotion;
  reportErrant(core);
  core.exportMetrics();
  core.exportSituations();
  // Compared with what was last saved, not with the start of this cycle: an operator command
  // between cycles may have moved roles after its own save.
  if (core.unsaved()) await core.persist();
  fireStateChangeHooks(core);
  exchangeWithAgents(core);
  convergeRoutes(core);
  return core.snapshot();
}

async function decideCycle(core: EngineCore): Promise<void> {
  const disposition = core.disposition('monitor');
  const safetyDry = !core.options.leadership.mayAct() || core.state.mode === 'passive';
  const safety = core.runner(safetyDry);
  const decide = core.runner(disposition.kind !== 'act');
  if (core.state.operation) {
    // Only after a restart (operations run under the lock); passive leaves it for the operator.
    await recoverOperation(core.context(safety));
    core.loadPinned();
  }
  const monitorDecides = core.config.triggers.monitor || !core.pipelineUp();
  await enforceReadOnly(
    core,
    core.context(safety),
    monitorDecides ? core.context(decide) : undefined,
  );
  if (monitorDecides) {
    await reconcileRoles(core, core.context(decide), 'monitor');
    await keepReplicasOnWriter(core, core.context(decide));
  }
  await retryVips(core, core.context(decide));
  const planned = [
    ...safety.planned,
    ...decide.planned.map((entry) =>
      disposition.kind === 'defer' ? deferredEntry(entry, disposition.reason) : entry,
    ),
  ];
  const signature = JSON.stringify(
    planned.map((entry) => [
      entry.event,
      entry.host,
      entry.role,
      entry.detail,
      entry.outcome,
      entry.phase,
    ]),
  );
  if (signature !== core.lastPlanSignature) {
    core.flushPlanned(planned);
    core.lastPlanSignature = signature;
  }
}

/** Invariant 1 every cycle; read_only=ON acts in manual mode too (it can only take writes away from hosts that must not have them). */
async function enforceReadOnly(
  core: EngineCore,
  safety: OpContext,
  decide: OpContext | undefined,
): Promise<void> {
  const writer = holderOf(core.state.roles, core.writerRole);
  const plan = planReadOnly({ ...safety, dropped: core.dropped }, writer);
  if (plan.refusal)
    core.condition('writer.split_brain', plan.refusal, () =>
      note(core.ctxBase(), {
        phase: 'refused',
        event: 'writer.split_brain',
        role: core.writerRole,
        reason: plan.refusal as string,
      }),
    );
  let allReadOnly = true;
  for (const item of plan.setReadOnly) {
    const outcome = await safety.runner.attempt(
      {
        event: 'mysql.set_read_only',
        host: item.host,
        role: core.writerRole,
        reason: item.reason,
        inputs: { on: true },
      },
      (actuator) => actuator.setReadOnly(item.host, true),
    );
    if (!outcome.ok) allReadOnly = false;
  }
  if (!decide) return;
  if (plan.adopt) {
    note(decide, {
      phase: 'decision',
      event: 'writer.adopted',
      host: plan.adopt.host,
      role: core.writerRole,
      reason: plan.adopt.reason,
    });
    setHolder(decide, core.writerRole, plan.adopt.host);
  }
  if (plan.makeWritable && allReadOnly && core.agents.leaseLapsedOn(plan.makeWritable.host)) {
    const host = plan.makeWritable.host;
    const reason = `${host} holds ${core.writerRole} but its agent reports its lease lapsed (it reaches no majority of the voters): not making it writable until it does`;
    core.condition('writer.lease_lapsed', reason, () =>
      note(core.ctxBase(), {
        phase: 'refused',
        event: 'writer.lease_lapsed',
        host,
        role: core.writerRole,
        reason,
      }),
    );
  } else if (plan.makeWritable && allReadOnly) {
    const target = plan.makeWritable.host;
    const lease = await decide.grantLease(target);
    if (!lease.ok) {
      core.condition('writer.no_lease', lease.detail, () =>
        note(core.ctxBase(), {
          phase: 'refused',
          event: 'writer.no_lease',
          host: target,
          role: core.writerRole,
          reason: `not making ${target} writable: ${lease.detail}`,
        }),
      );
      return;
    }
    await decide.runner.attempt(
      {
        event: 'mysql.set_read_only',
        host: target,
        role: core.writerRole,
        reason: plan.makeWritable.reason,
        inputs: { on: false },
      },
      (actuator) => actuator.setReadOnly(target, false),
    );
  }
}

/** A VIP that failed to follow its role is added again while the role still sits there. */
async function retryVips(core: EngineCore, ctx: OpContext): Promise<void> {
  if (ctx.runner.dry || core.vipRetries.size === 0) return;
  // Once per cycle, within a routine move's bound: a retry is made again by the next cycle.
  const { bound } = routineMoves(core);
  for (const [ip, { role, host }] of [...core.vipRetries]) {
    if (core.state.roles[role]?.[ip] !== host) {
      core.vipRetries.delete(ip);
      continue;
    }
    const outcome = await ctx.runner.attempt(
      {
        event: 'vip.add',
        host,
        role,
        reason: `retry: ${role} VIP ${ip} is not on ${host} yet`,
        inputs: { ip },
      },
      (actuator) => actuator.addVip(host, ip, bound),
    );
    if (outcome.ok) core.vipRetries.delete(ip);
  }
}

/**
 * The writer the manager lost while the other hosts reached it all along comes back from
 * HARD_OFFLINE to AWAITING_RECOVERY like any host; but nothing happened to it, only to the
 * manager's path. Holding it would move the writer away for nothing: it is ONLINE again, and the
 * journal says why. A restart (held) or a failover in between (no longer the writer) is not core.
 */
function readmitWriterSeenByOthers(core: EngineCore): void {
  const writer = holderOf(core.state.roles, core.writerRole);
  for (const host of [...core.seenByOthersWhileLost]) {
    const record = core.state.hosts[host];
    const obs = core.observations.get(host);
    if (host !== writer) {
      core.seenByOthersWhileLost.delete(host);
      continue;
    }
    if (!obs?.reachable || !record) continue;
    core.seenByOthersWhileLost.delete(host);
    if (record.state !== 'AWAITING_RECOVERY' || record.held) continue;
    const reason = `the manager lost ${host} but the other hosts reached it throughout (the manager's path was broken): it stays the writer, ONLINE`;
    core.state.hosts[host] = { ...setOnlineRecord(record, core.now()).record, reason };
    note(core.ctxBase(), {
      phase: 'decision',
      event: 'writer.readmitted',
      host,
      role: core.writerRole,
      reason,
    });
  }
}

/**
 * A host dropped from a role by a replication alert (its IO thread broke when its master died)
 * and then made the writer keeps firing that alert (a new writer replicates from nobody): the
 * drop would last until an unrelated alert resolves. The writer's own replication is not held
 * against it, so such drops are lifted.
 */
function liftWriterReplicationDrops(core: EngineCore): void {
  const writer = holderOf(core.state.roles, core.writerRole);
  const roles = writer ? core.dropped.get(writer) : undefined;
  if (!writer || !roles) return;
  for (const role of [...roles]) {
    const cause = core.dropCauses.get(`${writer}\u0000${role}`);
    if (!cause || !REPLICATION_ALERTS.has(cause)) continue;
    roles.delete(role);
    core.dropCauses.delete(`${writer}\u0000${role}`);
    note(core.ctxBase(), {
      phase: 'decision',
      event: 'alert.drop_lifted',
      host: writer,
      role,
      reason: `${writer} is the writer now: ${cause} about its own replication is not held against it; ${role} may return`,
    });
  }
  core.syncMaps();
}

/**
 * DESIGN.md invariant 6: every host's agent gets the whole set of VIPs its roles give it, every
 * cycle. Nothing is sent when this manager may not act or only plans.
 */
function exchangeWithAgents(core: EngineCore): void {
  if (!core.options.leadership.mayAct() || core.state.mode === 'passive') return;
  core.agents.exchange(core.state);
}

/** Routers converge to the roles every cycle, like VIPs; not awaited (a hung HAProxy never slows a cycle). */
function convergeRoutes(core: EngineCore): void {
  if (!core.options.routes) return;
  if (!core.options.leadership.mayAct() || core.state.mode === 'passive') return;
  core.options.routes.converge(() => core.state);
}

function deferredEntry(entry: JournalDraft, reason: string): JournalDraft {
  return { ...entry, outcome: 'skipped', reason: `${reason}: ${entry.reason ?? ''}`.trim() };
}

/**
 * on_state_change hooks for every host whose state changed since the last cycle (the monitor's
 * transitions and the operator's set-online / set-offline alike), without waiting for them. Only
 * on a manager that acts and not in passive mode; states at start are the baseline, not changes.
 */
function fireStateChangeHooks(core: EngineCore): void {
  const current = new Map(
    Object.entries(core.state.hosts).map(([host, record]) => [host, record.state as string]),
  );
  const previous = core.hookStates;
  core.hookStates = current;
  if (!previous || !core.options.leadership.mayAct() || core.state.mode === 'passive') return;
  for (const [host, state] of current) {
    const before = previous.get(host);
    if (before === undefined || before === state) continue;
    core.hooks.fire({
      cluster: core.config.cluster,
      event: 'on_state_change',
      host,
      state,
      previous_state: before,
      reason: core.state.hosts[host]?.reason,
    });
  }
}
