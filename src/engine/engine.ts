import type { AgentExchange } from '../actuator/agent-exchange.js';
import type { Mode } from '../config/schema.js';
import type { ClusterState, ClusterStateStore } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Journal } from '../journal/journal.js';
import type { Leadership } from '../leadership/leadership.js';
import { silentLogger, type Logger } from '../log.js';
import { HandledAlerts, REPLICATION_ALERTS, WATCHDOG_ALERTS, evaluateAlert } from './alerts.js';
import {
  chooseSwitchoverTarget,
  chooseWriterCandidate,
  type CandidateChoice,
} from './candidates.js';
import type { EngineConfig, OpContext, PositionReader } from './context.js';
import type { Actuators, JournalDraft } from './steps.js';
import { writerDeathEvidence, type Evidence } from './evidence.js';
import { AgentViews } from './agent-views.js';
import { runFailover } from './failover.js';
import { mariadbGtid, type GtidOps } from '../mysql/gtid.js';
import { planReadOnly } from './invariants.js';
import { countTransactions, errantTransactions, gtidViewOf, type GtidView } from './errant.js';
import { setOnline as setOnlineRecord } from '../monitor/state-machine.js';
import { hasVip, note, refused, setHolder } from './operation.js';
import { recoverOperation } from './recovery.js';
import { NO_IP, assignRoles, holderOf, isEligible } from './roles.js';
import { StepRunner } from './steps.js';
import { checkStartup } from './startup.js';
import { runSwitchover } from './switchover.js';
import { ioConnected, replicatesFrom } from './topology.js';
import { droppedWithMaintenance } from '../maintenance/engine-input.js';
import type { AlertDecision, ControlPlane, IncomingAlert, OperationResult } from './types.js';

export interface EngineOptions {
  config: EngineConfig;
  store: ClusterStateStore;
  /** live: acts; planner: a dry-run actuator whose PlannedSteps describe what passive mode would do. */
  actuators: Actuators;
  positions: PositionReader;
  journal: Journal;
  leadership: Leadership;
  metrics?: SwitchyardMetrics;
  log?: Logger;
  /** GTID arithmetic; src/mysql/gtid.ts can replace the engine's minimal MariaDB one here. */
  gtid?: GtidOps;
  /** Name of the exclusive role whose holder is the writable host. Default "writer". */
  writerRole?: string;
  /** The per-cycle exchange with the hosts' agents (VIP sets, writer probes, lease). */
  agents?: AgentExchange;
  now?: () => number;
}

type Trigger = 'monitor' | 'alert' | 'operator' | 'startup';
type Disposition = { kind: 'act' | 'plan' | 'defer'; reason: string };

interface ReconcileSummary {
  actions: string[];
  refusals: string[];
}

/**
 * The decision engine. One instance per manager; every entry point (monitor cycle, webhook,
 * operator command) runs under one lock, so a switchover never interleaves with a cycle.
 *
 * Ownership of ClusterState: the monitor owns host records (states, failures), the engine owns
 * roles, mode and the in-flight operation. onCycle merges the monitor's host records with the
 * engine's (newest `since` wins, so an operator's set-offline between cycles survives a monitor
 * that passes an older copy) and returns the state the monitor should use next.
 */
export class Engine implements ControlPlane {
  private state: ClusterState;
  private observations = new Map<string, HostObservation>();
  /** Mirrors state.dropped / state.pinned (persisted), as maps for the pure functions. */
  private readonly dropped = new Map<string, Set<string>>();
  private readonly pinned = new Map<string, string>();
  private readonly handledAlerts = new HandledAlerts();
  private readonly config: EngineConfig;
  private readonly log: Logger;
  private readonly gtid: GtidOps;
  private readonly writerRole: string;
  private readonly now: () => number;
  private lock: Promise<unknown> = Promise.resolve();
  private started = false;
  private lastPipelineAt?: number;
  private lastPlanSignature = '';
  /** Conditions journaled once while they last (no failover because..., no eligible host ...). */
  private conditions = new Map<string, string>();
  private conditionsThisCycle = new Set<string>();
  /** host -> errant set seen last cycle / confirmed (two cycles in a row). */
  private errantSeen = new Map<string, string>();
  private errantConfirmed = new Map<string, string>();
  /** Automatic switchovers (prefer, ineligible holder) wait after a failed one: each try is a write pause. */
  private switchoverBackoffUntil = 0;
  /** Last server_id seen per host (an unreachable host's is remembered). */
  private readonly serverIds = new Map<string, number>();
  private pathBroken = false;
  /** host + role -> the alert that dropped it (in memory: after a restart, drops wait for their resolve). */
  private readonly dropCauses = new Map<string, string>();
  /** Writers the manager lost while other hosts still reached them (its own path was broken). */
  private readonly seenByOthersWhileLost = new Set<string>();
  /** The state as last saved (without updatedAt), so any unsaved change is saved next cycle. */
  private lastSaved = '';
  private readonly agents: AgentViews;
  /** Manager clock: start of the first of a host's current run of failed checks. */
  private readonly lostSince = new Map<string, number>();
  /** Writer VIPs whose add failed during a move: ip -> role and host, retried every cycle. */
  private readonly vipRetries = new Map<string, { role: string; host: string }>();
  /** Hosts an Alertmanager silence holds automation off (src/maintenance); not the host an operator command names. */
  private maintenance: ReadonlySet<string> = new Set();

  constructor(
    private readonly options: EngineOptions,
    initial?: ClusterState,
  ) {
    this.config = options.config;
    this.log = options.log ?? silentLogger;
    this.gtid = options.gtid ?? mariadbGtid;
    this.writerRole = options.writerRole ?? 'writer';
    this.now = options.now ?? Date.now;
    this.agents = new AgentViews(options.agents, options.config, this.writerRole, this.now);
    this.state = initial ? structuredClone(initial) : Engine.emptyState(options.config, this.now());
    for (const [host, roles] of Object.entries(this.state.dropped ?? {}))
      this.dropped.set(host, new Set(roles));
    for (const [role, host] of Object.entries(this.state.pinned ?? {})) this.pinned.set(role, host);
    options.metrics?.setMode(this.state.mode);
  }

  static emptyState(config: EngineConfig, now = Date.now()): ClusterState {
    return {
      version: 1,
      cluster: config.cluster,
      mode: config.mode,
      hosts: {},
      roles: {},
      updatedAt: now,
    };
  }

  /** A copy of the engine's current state (for status, tests). */
  snapshot(): ClusterState {
    return structuredClone(this.state);
  }

  /**
   * Several managers: replaces the engine's state with the cluster state read from etcd (under
   * the engine's lock, so never in the middle of an operation). With `recover` (this manager just
   * became leader), the next cycle runs the start-up reconciliation, which finishes or undoes an
   * in-flight operation exactly as after a restart.
   */
  adopt(state: ClusterState, options: { recover: boolean }): Promise<void> {
    return this.exclusive(async () => {
      this.state = structuredClone(state);
      this.dropped.clear();
      for (const [host, roles] of Object.entries(this.state.dropped ?? {}))
        this.dropped.set(host, new Set(roles));
      this.loadPinned();
      this.vipRetries.clear();
      if (options.recover) this.started = false;
      this.options.metrics?.setMode(this.state.mode);
    });
  }

  /** Roles an alert or operator took from hosts, for status output. */
  droppedRoles(): Record<string, string[]> {
    return Object.fromEntries(
      [...this.dropped]
        .filter(([, roles]) => roles.size > 0)
        .map(([host, roles]) => [host, [...roles]]),
    );
  }

  /** Lasting conditions journaled once (why no failover, no writer, ...), for status. */
  currentConditions(): Record<string, string> {
    return Object.fromEntries(this.conditions);
  }

  /** The manager lost the writer while another host still reaches it (its own path is broken). */
  managerPathBroken(): boolean {
    return this.pathBroken;
  }

  pipelineUp(): boolean {
    return (
      this.lastPipelineAt !== undefined &&
      this.now() - this.lastPipelineAt < this.config.triggers.pipeline_timeout
    );
  }

  // ---------------------------------------------------------------- entry points

  /** Start-up reconciliation with the first observations; onCycle runs it itself if not called. */
  async start(observations: HostObservation[], monitorState?: ClusterState): Promise<ClusterState> {
    return this.exclusive(async () => {
      this.mergeIncoming(monitorState);
      this.observations = new Map(observations.map((obs) => [obs.host, obs]));
      await this.reconcileStartup();
      return this.snapshot();
    });
  }

  /** Called by the monitor loop after each cycle. Returns the state to persist and use next. */
  async onCycle(
    observations: HostObservation[],
    clusterState: ClusterState,
  ): Promise<ClusterState> {
    return this.exclusive(async () => {
      this.mergeIncoming(clusterState);
      this.observations = new Map(observations.map((obs) => [obs.host, obs]));
      for (const obs of observations) {
        if (obs.serverId !== undefined) this.serverIds.set(obs.host, obs.serverId);
        if (obs.reachable) this.lostSince.delete(obs.host);
        else if (!this.lostSince.has(obs.host)) this.lostSince.set(obs.host, obs.at);
      }
      if (!this.started) await this.reconcileStartup();
      this.conditionsThisCycle = new Set();
      this.readmitWriterSeenByOthers();
      this.liftWriterReplicationDrops();
      await this.cycle();
      const writer = holderOf(this.state.roles, this.writerRole);
      this.pathBroken =
        writer !== null &&
        !this.observations.get(writer)?.reachable &&
        /still see/.test(this.evidence(writer).reason);
      if (this.pathBroken && writer) this.seenByOthersWhileLost.add(writer);
      this.options.metrics?.managerPathBroken.set(this.pathBroken ? 1 : 0);
      for (const key of [...this.conditions.keys()])
        if (!this.conditionsThisCycle.has(key)) this.conditions.delete(key);
      // The promotion point only describes the writer it promoted; once the writer moved on, its
      // old writer's later writes (made as a legitimate writer) must not look errant.
      if (
        this.state.lastPromotion &&
        holderOf(this.state.roles, this.writerRole) !== this.state.lastPromotion.host
      )
        delete this.state.lastPromotion;
      this.reportErrant();
      this.exportMetrics();
      // Compared with what was last saved, not with the start of this cycle: an operator command
      // between cycles may have moved roles after its own save.
      if (this.signature() !== this.lastSaved) await this.persist();
      this.exchangeWithAgents();
      return this.snapshot();
    });
  }

  /** Hosts in maintenance from now on: no automatic failover away from or onto them, no role changes for them. */
  setMaintenance(hosts: ReadonlySet<string>): void {
    this.maintenance = hosts;
  }

  notePipelineAlive(): void {
    this.lastPipelineAt = this.now();
    this.options.metrics?.alertingPipelineUp.set(1);
  }

  async handleAlerts(alerts: IncomingAlert[]): Promise<AlertDecision[]> {
    // Every webhook, even one without alerts, shows the alerting pipeline alive.
    this.notePipelineAlive();
    return this.exclusive(async () => {
      const decisions: AlertDecision[] = [];
      for (const alert of alerts) {
        const decision = await this.handleAlert(alert);
        if (decision.decision === 'acted' || decision.decision === 'planned')
          this.handledAlerts.remember(alert, this.now());
        decisions.push(decision);
      }
      this.exportMetrics();
      return decisions;
    });
  }

  async setOnline(host: string): Promise<OperationResult> {
    return this.exclusive(async () => {
      if (!this.config.hosts[host])
        return { ok: false, code: 'not_found', detail: `unknown host "${host}"` };
      const disposition = this.disposition('operator');
      if (disposition.kind !== 'act')
        return refused(`${disposition.reason}: set-online not applied`);
      const record = this.state.hosts[host];
      const obs = this.observations.get(host);
      if (record?.state === 'ONLINE' && !record.held)
        return { ok: true, detail: `${host} is already ONLINE` };
      if (!obs?.reachable)
        return this.refuse(
          'host.set_online',
          host,
          `${host} is not reachable (${record?.state ?? 'no observation yet'}): it cannot be set online`,
        );
      const writer = holderOf(this.state.roles, this.writerRole);
      if (writer && writer !== host) {
        const live = await this.liveErrant(host, writer);
        if (!live.ok) return this.refuse('host.set_online', host, live.reason);
        if (live.errant.length > 0) {
          return this.refuse(
            'host.set_online',
            host,
            `${host} has transactions the writer ${writer} lacks (${live.errant.join(', ')}): it diverged; re-clone it or reconcile those transactions before set-online`,
          );
        }
      }
      note(this.ctxBase(), {
        phase: 'decision',
        event: 'host.set_online',
        host,
        reason: `operator: ${host} ${record?.state ?? 'unknown'}${record?.held ? ` (held: ${record.held})` : ''} -> ONLINE`,
      });
      // An operator's acknowledgement: the flap history goes with the hold (setOnline clears both).
      this.state.hosts[host] = setOnlineRecord(
        record ?? { state: 'AWAITING_RECOVERY', reason: '', since: 0, failures: 0, flaps: [] },
        this.now(),
      ).record;
      // The old writer passed the errant check: the promotion point has done its job.
      if (this.state.lastPromotion?.from === host) delete this.state.lastPromotion;
      await this.persist();
      const runner = this.runner(false);
      const ctx = this.context(runner);
      const writerObs = writer ? this.observations.get(writer) : undefined;
      // After a failover the new writer stopped replicating from this host; it may again now.
      if (
        writer &&
        writer !== host &&
        writerObs?.replication &&
        replicatesFrom(writerObs.replication, host, this.config) &&
        !writerObs.replication.ioRunning &&
        !writerObs.replication.sqlRunning
      ) {
        await runner.attempt(
          {
            event: 'mysql.start_replication',
            host: writer,
            reason: `${host} is back and has nothing the writer lacks: ${writer} replicates from it again`,
          },
          (actuator) => actuator.startReplication(writer),
        );
      }
      const summary = await this.reconcileRoles(ctx, 'operator', host);
      await this.persist();
      this.exportMetrics();
      return { ok: true, detail: [`${host} is ONLINE`, ...summary.actions].join('; ') };
    });
  }

  async setOffline(host: string): Promise<OperationResult> {
    return this.exclusive(async () => {
      if (!this.config.hosts[host])
        return { ok: false, code: 'not_found', detail: `unknown host "${host}"` };
      const disposition = this.disposition('operator');
      if (disposition.kind !== 'act')
        return refused(`${disposition.reason}: set-offline not applied`);
      const record = this.state.hosts[host];
      if (record?.state === 'ADMIN_OFFLINE')
        return { ok: true, detail: `${host} is already ADMIN_OFFLINE` };
      const runner = this.runner(false);
      const ctx = this.context(runner);
      const steps: string[] = [];
      if (holderOf(this.state.roles, this.writerRole) === host) {
        const choice = this.switchoverTarget(ctx, host);
        if (!choice.ok)
          return this.refuse(
            'host.set_offline',
            host,
            `${host} holds ${this.writerRole} and ${choice.reason}: refusing to take the only writer candidate offline`,
          );
        const moved = await runSwitchover(ctx, host, choice.host, {
          force: false,
          reason: `operator takes ${host} offline`,
        });
        if (!moved.ok)
          return {
            ...moved,
            detail: `${host} stays online: moving ${this.writerRole} away failed: ${moved.detail}`,
          };
        steps.push(moved.detail);
      }
      note(ctx, {
        phase: 'decision',
        event: 'host.set_offline',
        host,
        reason: `operator: ${host} ${record?.state ?? 'unknown'} -> ADMIN_OFFLINE`,
      });
      this.state.hosts[host] = {
        ...(record ?? { failures: 0, flaps: [] }),
        state: 'ADMIN_OFFLINE',
        reason: 'set offline by the operator',
        since: this.now(),
      };
      await this.persist();
      const summary = await this.reconcileRoles(ctx, 'operator', host);
      await this.persist();
      this.exportMetrics();
      return {
        ok: true,
        detail: [`${host} is ADMIN_OFFLINE`, ...steps, ...summary.actions].join('; '),
      };
    });
  }

  async moveRole(
    role: string,
    host: string,
    options: { force: boolean },
  ): Promise<OperationResult> {
    return this.exclusive(async () => {
      const roleConfig = this.config.roles[role];
      if (!roleConfig) return { ok: false, code: 'not_found', detail: `unknown role "${role}"` };
      if (!this.config.hosts[host])
        return { ok: false, code: 'not_found', detail: `unknown host "${host}"` };
      if (!roleConfig.hosts.includes(host))
        return this.refuse(
          'role.move',
          host,
          `${host} is not one of ${role}'s hosts (${roleConfig.hosts.join(', ')})`,
          role,
        );
      const disposition = this.disposition('operator');
      const runner = this.runner(disposition.kind !== 'act');
      const ctx = this.context(runner);
      let result: OperationResult;
      if (role === this.writerRole) {
        const holder = holderOf(this.state.roles, role);
        result = await runSwitchover(ctx, holder, host, {
          force: options.force,
          reason: 'operator move-role',
          kind: 'move-role',
        });
      } else {
        result = await this.moveOtherRole(ctx, role, host);
      }
      if (runner.dry) {
        this.flushPlanned(runner.planned);
        return refused(
          `${disposition.reason}: planned only, nothing changed${result.ok ? '' : ` (${result.detail})`}`,
          runner.planned.map((entry) => entry.detail ?? entry.reason ?? entry.event),
        );
      }
      if (result.ok && roleConfig.exclusive) {
        this.pinned.set(role, host);
        this.syncMaps();
        await this.persist();
      }
      this.exportMetrics();
      return result;
    });
  }

  async setMode(mode: Mode, reason: string): Promise<OperationResult> {
    return this.exclusive(async () => {
      const previous = this.state.mode;
      note(this.ctxBase(), {
        phase: 'decision',
        event: 'mode.changed',
        reason: `mode ${previous} -> ${mode}: ${reason}`,
        inputs: { previous, mode },
      });
      this.state.mode = mode;
      this.state.modeReason = reason;
      this.lastPlanSignature = '';
      await this.persist();
      this.options.metrics?.setMode(mode);
      return {
        ok: true,
        detail: `mode is ${mode}${previous === mode ? ' (unchanged)' : ` (was ${previous})`}`,
      };
    });
  }

  // ---------------------------------------------------------------- cycle

  private async cycle(): Promise<void> {
    const disposition = this.disposition('monitor');
    const safetyDry = !this.options.leadership.mayAct() || this.state.mode === 'passive';
    const safety = this.runner(safetyDry);
    const decide = this.runner(disposition.kind !== 'act');
    if (this.state.operation) {
      // Only after a restart (operations run under the lock); passive leaves it for the operator.
      await recoverOperation(this.context(safety));
      this.loadPinned();
    }
    const monitorDecides = this.config.triggers.monitor || !this.pipelineUp();
    await this.enforceReadOnly(
      this.context(safety),
      monitorDecides ? this.context(decide) : undefined,
    );
    if (monitorDecides) await this.reconcileRoles(this.context(decide), 'monitor');
    await this.retryVips(this.context(decide));
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
    if (signature !== this.lastPlanSignature) {
      this.flushPlanned(planned);
      this.lastPlanSignature = signature;
    }
  }

  /** Invariant 1 every cycle; read_only=ON acts in manual mode too (it can only take writes away from hosts that must not have them). */
  private async enforceReadOnly(safety: OpContext, decide: OpContext | undefined): Promise<void> {
    const writer = holderOf(this.state.roles, this.writerRole);
    const plan = planReadOnly({ ...safety, dropped: this.dropped }, writer);
    if (plan.refusal)
      this.condition('writer.split_brain', plan.refusal, () =>
        note(this.ctxBase(), {
          phase: 'refused',
          event: 'writer.split_brain',
          role: this.writerRole,
          reason: plan.refusal as string,
        }),
      );
    let allReadOnly = true;
    for (const item of plan.setReadOnly) {
      const outcome = await safety.runner.attempt(
        {
          event: 'mysql.set_read_only',
          host: item.host,
          role: this.writerRole,
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
        role: this.writerRole,
        reason: plan.adopt.reason,
      });
      setHolder(decide, this.writerRole, plan.adopt.host);
    }
    if (plan.makeWritable && allReadOnly && this.agents.leaseLapsedOn(plan.makeWritable.host)) {
      const host = plan.makeWritable.host;
      const reason = `${host} holds ${this.writerRole} but its agent reports its lease lapsed (it reaches no majority of the voters): not making it writable until it does`;
      this.condition('writer.lease_lapsed', reason, () =>
        note(this.ctxBase(), {
          phase: 'refused',
          event: 'writer.lease_lapsed',
          host,
          role: this.writerRole,
          reason,
        }),
      );
    } else if (plan.makeWritable && allReadOnly) {
      const target = plan.makeWritable.host;
      const lease = await decide.grantLease(target);
      if (!lease.ok) {
        this.condition('writer.no_lease', lease.detail, () =>
          note(this.ctxBase(), {
            phase: 'refused',
            event: 'writer.no_lease',
            host: target,
            role: this.writerRole,
            reason: `not making ${target} writable: ${lease.detail}`,
          }),
        );
        return;
      }
      await decide.runner.attempt(
        {
          event: 'mysql.set_read_only',
          host: target,
          role: this.writerRole,
          reason: plan.makeWritable.reason,
          inputs: { on: false },
        },
        (actuator) => actuator.setReadOnly(target, false),
      );
    }
  }

  /** Writer first (failover, switchover away from an ineligible holder, election, prefer), then the other roles' IPs. */
  private async reconcileRoles(
    ctx: OpContext,
    trigger: Trigger,
    operatorHost?: string,
    onlyRoles?: ReadonlySet<string>,
  ): Promise<ReconcileSummary> {
    const summary: ReconcileSummary = { actions: [], refusals: [] };
    // Maintenance: nothing automatic moves onto (eligibility) or away from (skipped) such a host;
    // the host an operator command names is the operator's to change.
    const frozen = new Set([...this.maintenance].filter((host) => host !== operatorHost));
    ctx = {
      ...ctx,
      dropped: droppedWithMaintenance(
        this.dropped,
        frozen,
        this.state.roles,
        Object.keys(this.config.roles),
      ),
    };
    const writer = holderOf(this.state.roles, this.writerRole);
    if (writer && frozen.has(writer) && !this.observations.get(writer)?.reachable) {
      const reason = `${writer} holds ${this.writerRole} and is in maintenance (an Alertmanager silence): no automatic failover away from it`;
      this.condition('failover.withheld', reason, () =>
        note(this.ctxBase(), {
          phase: 'decision',
          event: 'failover.withheld',
          host: writer,
          role: this.writerRole,
          reason,
          level: 'warn',
        }),
      );
    } else if (
      this.config.roles[this.writerRole] &&
      !(writer && frozen.has(writer)) &&
      (!onlyRoles || onlyRoles.has(this.writerRole))
    )
      await this.reconcileWriter(ctx, trigger, summary);
    const assignment = assignRoles({
      roles: this.config.roles,
      hosts: this.state.hosts,
      current: this.state.roles,
      writerRole: this.writerRole,
      dropped: ctx.dropped,
      pinned: this.pinned,
    });
    for (const move of assignment.moves) {
      if (
        move.role === this.writerRole ||
        frozen.has(move.from ?? '') ||
        frozen.has(move.to ?? '') ||
        (onlyRoles && !onlyRoles.has(move.role))
      )
        continue;
      const done = await this.applyMove(ctx, move.role, move.ip, move.from, move.to, move.reason);
      summary.actions.push(done);
    }
    for (const item of assignment.unassigned) {
      if (item.role === this.writerRole) continue;
      this.condition(`unassigned:${item.role}:${item.ip}`, item.reason, () =>
        note(this.ctxBase(), {
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

  private async reconcileWriter(
    ctx: OpContext,
    trigger: Trigger,
    summary: ReconcileSummary,
  ): Promise<void> {
    const role = this.writerRole;
    const roleConfig = this.config.roles[role];
    if (!roleConfig) return;
    const holder = holderOf(this.state.roles, role);
    const eligibility = { hosts: this.state.hosts, writerRole: role, dropped: ctx.dropped };
    if (this.pinned.has(role) && this.pinned.get(role) !== holder && !ctx.runner.dry) {
      // The operator's placement ended (failover, set-offline): prefer applies again.
      this.pinned.delete(role);
      this.syncMaps();
    }
    if (holder === null) {
      const writable = [...this.observations.values()].filter(
        (obs) => obs.reachable && obs.readOnly === false,
      );
      if (writable.length > 0) return; // adopted or refused by the invariant step
      // A host the manager cannot see might be a live writer: electing another would make two.
      const unseen = Object.keys(this.config.hosts).filter(
        (host) => !this.observations.get(host)?.reachable && !this.evidence(host).dead,
      );
      if (unseen.length > 0) {
        const reason = `not electing a writer while ${unseen.join(', ')} cannot be checked (unreachable and not dead by evidence): it might be taking writes`;
        summary.refusals.push(reason);
        this.condition('writer.none', reason, () =>
          note(this.ctxBase(), { phase: 'refused', event: 'writer.none', role, reason }),
        );
        return;
      }
      const choice = chooseWriterCandidate(ctx, []);
      if (!choice.ok) {
        summary.refusals.push(choice.reason);
        this.condition('writer.none', choice.reason, () =>
          note(this.ctxBase(), {
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
    if (!this.observations.get(holder)?.reachable) {
      const evidence = this.evidence(holder);
      if (!evidence.dead) {
        summary.refusals.push(evidence.reason);
        this.condition('failover.withheld', evidence.reason, () =>
          note(this.ctxBase(), {
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
        (reason, write) => this.condition('failover.refused', reason, write),
        this.divergedHosts(),
      );
      if (outcome.promoted && !ctx.runner.dry) this.state.lastPromotion = outcome.promoted;
      (outcome.result.ok ? summary.actions : summary.refusals).push(outcome.result.detail);
      return;
    }
    if (!isEligible(eligibility, role, holder)) {
      const choice = this.switchoverTarget(ctx, holder);
      const why =
        this.state.hosts[holder]?.held ??
        (this.dropped.get(holder)?.has(role)
          ? 'dropped by an alert rule'
          : (this.state.hosts[holder]?.state ?? 'unknown'));
      if (!choice.ok) {
        summary.refusals.push(choice.reason);
        this.condition('writer.stuck', choice.reason, () =>
          note(this.ctxBase(), {
            phase: 'refused',
            event: 'switchover.refused',
            host: holder,
            role,
            reason: `${holder} may no longer hold ${role} (${why}) but ${choice.reason}; it stays the writer`,
          }),
        );
        return;
      }
      if (trigger !== 'operator' && this.now() < this.switchoverBackoffUntil) return;
      const result = await runSwitchover(ctx, holder, choice.host, {
        force: false,
        reason: `${holder} may no longer hold ${role} (${why})`,
      });
      if (!result.ok && !ctx.runner.dry) this.backOffSwitchovers();
      (result.ok ? summary.actions : summary.refusals).push(result.detail);
      return;
    }
    const prefer = roleConfig.prefer;
    if (
      trigger === 'monitor' &&
      prefer &&
      prefer !== holder &&
      this.pinned.get(role) !== holder &&
      this.state.hosts[prefer]?.state === 'ONLINE' &&
      isEligible(eligibility, role, prefer) &&
      this.observations.get(prefer)?.reachable &&
      this.observations.get(holder)?.reachable &&
      this.now() >= this.switchoverBackoffUntil
    ) {
      const result = await runSwitchover(ctx, holder, prefer, {
        force: false,
        reason: `${prefer} is the preferred ${role} host and ONLINE again`,
      });
      if (!result.ok && !ctx.runner.dry) this.backOffSwitchovers();
      (result.ok ? summary.actions : summary.refusals).push(result.detail);
    }
  }

  /** A VIP that failed to follow its role is added again while the role still sits there. */
  private async retryVips(ctx: OpContext): Promise<void> {
    if (ctx.runner.dry) return;
    for (const [ip, { role, host }] of [...this.vipRetries]) {
      if (this.state.roles[role]?.[ip] !== host) {
        this.vipRetries.delete(ip);
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
        (actuator) => actuator.addVip(host, ip),
      );
      if (outcome.ok) this.vipRetries.delete(ip);
    }
  }

  private async applyMove(
    ctx: OpContext,
    role: string,
    ip: string,
    from: string | null,
    to: string | null,
    reason: string,
  ): Promise<string> {
    const runner = ctx.runner;
    note(ctx, {
      phase: 'decision',
      event: 'role.move',
      host: to ?? from ?? undefined,
      role,
      reason: `${role} ${ip}: ${from ?? '(none)'} -> ${to ?? '(none)'}: ${reason}`,
      inputs: { ip, from, to },
    });
    if (from && hasVip(ip) && !this.agents.answering(from)) {
      note(ctx, {
        phase: 'note',
        event: 'vip.remove_deferred',
        host: from,
        role,
        reason: `${role} IP ${ip} leaves ${from}, whose agent does not answer: the per-cycle exchange removes it on first contact`,
        inputs: { ip },
      });
    } else if (from && hasVip(ip)) {
      await runner.attempt(
        {
          event: 'vip.remove',
          host: from,
          role,
          reason: `${role} IP ${ip} leaves ${from}`,
          inputs: { ip },
        },
        (actuator) => actuator.removeVip(from, ip),
      );
    }
    let holder = to;
    if (to && hasVip(ip)) {
      const added = await runner.attempt(
        {
          event: 'vip.add',
          host: to,
          role,
          reason: `${role} IP ${ip} goes to ${to}`,
          inputs: { ip },
        },
        (actuator) => actuator.addVip(to, ip),
      );
      // Left unassigned so the next cycle tries again.
      if (!added.ok) holder = null;
    }
    if (!runner.dry)
      this.state.roles = {
        ...this.state.roles,
        [role]: { ...(this.state.roles[role] ?? {}), [ip]: holder },
      };
    return `${role} ${ip} ${from ?? '(none)'} -> ${holder ?? '(none)'}`;
  }

  private async moveOtherRole(
    ctx: OpContext,
    role: string,
    host: string,
  ): Promise<OperationResult> {
    const roleConfig = this.config.roles[role];
    if (!roleConfig) return { ok: false, code: 'not_found', detail: `unknown role "${role}"` };
    if (
      !isEligible(
        { hosts: this.state.hosts, writerRole: this.writerRole, dropped: this.dropped },
        role,
        host,
      )
    ) {
      return this.refuse(
        'role.move',
        host,
        `${host} may not hold ${role}: it is ${this.state.hosts[host]?.state ?? 'unknown'}`,
        role,
      );
    }
    const current = this.state.roles[role] ?? {};
    const slots = roleConfig.ips.length > 0 ? roleConfig.ips : roleConfig.exclusive ? [NO_IP] : [];
    if (slots.some((ip) => current[ip] === host))
      return { ok: true, detail: `${host} already holds ${role}` };
    const moves: string[] = [];
    if (roleConfig.exclusive) {
      for (const ip of slots)
        moves.push(
          await this.applyMove(ctx, role, ip, current[ip] ?? null, host, 'operator move-role'),
        );
    } else {
      // Take one IP from the host holding the most, so the spread stays even.
      const counts = new Map<string, number>();
      for (const ip of slots)
        if (current[ip])
          counts.set(current[ip] as string, (counts.get(current[ip] as string) ?? 0) + 1);
      const ip =
        slots.find(
          (candidate) => current[candidate] === null || current[candidate] === undefined,
        ) ??
        [...slots].sort(
          (a, b) =>
            (counts.get(current[b] as string) ?? 0) - (counts.get(current[a] as string) ?? 0),
        )[0];
      if (!ip) return refused(`${role} has no IPs to move`);
      moves.push(
        await this.applyMove(ctx, role, ip, current[ip] ?? null, host, 'operator move-role'),
      );
    }
    await ctx.persist();
    return { ok: true, detail: moves.join('; ') };
  }

  // ---------------------------------------------------------------- alerts

  private async handleAlert(alert: IncomingAlert): Promise<AlertDecision> {
    const base = { alert: alert.name, status: alert.status, host: alert.labels.host } as const;
    if (WATCHDOG_ALERTS.has(alert.name))
      return { ...base, decision: 'ignored', reason: 'watchdog: the alerting pipeline is alive' };
    if (!this.config.triggers.alertmanager)
      return this.alertDecision(alert, {
        ...base,
        decision: 'ignored',
        reason: 'triggers.alertmanager is off: the monitor decides',
      });
    const handledAt = this.handledAlerts.handledAt(alert, this.now());
    if (handledAt !== undefined)
      return {
        ...base,
        decision: 'ignored',
        reason: `duplicate: already handled at ${new Date(handledAt).toISOString()}`,
      };
    const verdict = evaluateAlert(alert, {
      config: this.config,
      writerRole: this.writerRole,
      state: this.state,
      observations: this.observations,
      now: this.now(),
    });
    if (verdict.kind === 'ignore')
      return this.alertDecision(alert, {
        ...base,
        host: verdict.host ?? base.host,
        role: verdict.role,
        decision: 'ignored',
        reason: verdict.reason,
      });
    if (verdict.kind === 'drop' && this.maintenance.has(verdict.host))
      return this.alertDecision(alert, {
        ...base,
        host: verdict.host,
        role: verdict.roles.join(','),
        decision: 'ignored',
        reason: `${verdict.host} is in maintenance (an Alertmanager silence): ${verdict.reason}, not acted on`,
      });
    const role = verdict.roles.join(',');
    if (!this.options.leadership.mayAct()) {
      return this.alertDecision(alert, {
        ...base,
        host: verdict.host,
        role,
        decision: 'ignored',
        reason: `not the leader (${this.options.leadership.describe()})`,
      });
    }
    const disposition = this.disposition('alert');
    if (disposition.kind === 'defer') {
      return this.alertDecision(alert, {
        ...base,
        host: verdict.host,
        role,
        decision: 'deferred',
        reason: `${disposition.reason}: ${verdict.reason}`,
      });
    }
    const roles = this.dropped.get(verdict.host) ?? new Set<string>();
    const before = new Set(roles);
    for (const item of verdict.roles) {
      if (verdict.kind === 'drop') {
        roles.add(item);
        this.dropCauses.set(`${verdict.host}\u0000${item}`, alert.name);
      } else {
        roles.delete(item);
        this.dropCauses.delete(`${verdict.host}\u0000${item}`);
      }
    }
    this.dropped.set(verdict.host, roles);
    this.syncMaps();
    note(this.ctxBase(), {
      phase: 'decision',
      event: verdict.kind === 'drop' ? 'alert.drop_roles' : 'alert.restore_roles',
      host: verdict.host,
      role,
      reason: verdict.reason,
      inputs: { alert: alert.name, labels: alert.labels, startsAt: alert.startsAt },
    });
    const runner = this.runner(disposition.kind === 'plan');
    // Only the roles the alert is about: a reader alert must not move the writer (the monitor
    // cycle reconciles everything anyway).
    const summary = await this.reconcileRoles(
      this.context(runner),
      'alert',
      undefined,
      new Set(verdict.roles),
    );
    if (runner.dry) this.flushPlanned(runner.planned);
    else await this.persist();
    const what = summary.actions.length > 0 ? summary.actions.join('; ') : 'no IP had to move';
    if (runner.dry)
      return {
        ...base,
        host: verdict.host,
        role,
        decision: 'planned',
        reason: `${disposition.reason}: ${verdict.reason}: ${runner.planned.map((entry) => entry.detail ?? entry.reason).join('; ') || 'nothing to do'}`,
      };
    if (summary.refusals.length > 0 && summary.actions.length === 0 && verdict.kind === 'drop') {
      // Nothing moved: take the drop back (a later recovery of the host must not trigger a
      // move for a refused alert) and let a resend be evaluated afresh.
      this.dropped.set(verdict.host, before);
      this.syncMaps();
      await this.persist();
      return {
        ...base,
        host: verdict.host,
        role,
        decision: 'refused',
        reason: `${verdict.reason}: ${summary.refusals.join('; ')}`,
      };
    }
    return {
      ...base,
      host: verdict.host,
      role,
      decision: 'acted',
      reason: `${verdict.reason}: ${what}`,
    };
  }

  private alertDecision(alert: IncomingAlert, decision: AlertDecision): AlertDecision {
    this.journalOnly({
      phase: 'note',
      event: `alert.${decision.decision}`,
      host: decision.host,
      role: decision.role,
      reason: decision.reason,
      inputs: {
        alert: alert.name,
        status: alert.status,
        startsAt: alert.startsAt,
        fingerprint: alert.fingerprint,
      },
    });
    return decision;
  }

  // ---------------------------------------------------------------- start-up

  private async reconcileStartup(): Promise<void> {
    this.started = true;
    const disposition = this.disposition('startup');
    const runner = this.runner(disposition.kind === 'plan');
    const ctx = this.context(runner);
    if (this.state.operation) await recoverOperation(ctx);
    this.loadPinned();
    if (runner.dry) this.flushPlanned(runner.planned);

    const { problems, makeReadOnly } = await checkStartup({
      config: this.config,
      writerRole: this.writerRole,
      state: this.state,
      observations: this.observations,
      listVips: (host) => this.options.actuators.live.listVips(host),
    });
    if (!runner.dry) {
      // Invariant 1 before anything else.
      for (const item of makeReadOnly) {
        await runner.attempt(
          {
            event: 'mysql.set_read_only',
            host: item.host,
            role: this.writerRole,
            reason: item.reason,
            inputs: { on: true },
          },
          (actuator) => actuator.setReadOnly(item.host, true),
        );
      }
    }
    if (problems.length > 0 && this.state.mode !== 'passive') {
      const reason = `started passive: stored state and live cluster disagree: ${problems.join('; ')}`;
      this.state.mode = 'passive';
      this.state.modeReason = reason;
      note(this.ctxBase(), {
        phase: 'refused',
        event: 'startup.passive',
        reason,
        inputs: { problems },
      });
      this.options.metrics?.setMode('passive');
    } else if (problems.length > 0) {
      note(this.ctxBase(), {
        phase: 'note',
        event: 'startup.disagreement',
        reason: `stored state and live cluster disagree: ${problems.join('; ')}`,
      });
    }
    await this.persist();
  }

  // ---------------------------------------------------------------- helpers

  private loadPinned(): void {
    this.pinned.clear();
    for (const [role, host] of Object.entries(this.state.pinned ?? {})) this.pinned.set(role, host);
  }

  /** Keeps the persisted copies of drops and pins in step with the maps. */
  private syncMaps(): void {
    const dropped = Object.fromEntries(
      [...this.dropped]
        .filter(([, roles]) => roles.size > 0)
        .map(([host, roles]) => [host, [...roles].sort()]),
    );
    if (Object.keys(dropped).length > 0) this.state.dropped = dropped;
    else delete this.state.dropped;
    if (this.pinned.size > 0) this.state.pinned = Object.fromEntries(this.pinned);
    else delete this.state.pinned;
  }

  private backOffSwitchovers(): void {
    this.switchoverBackoffUntil =
      this.now() + Math.max(60_000, 2 * this.config.actuator.catchup_timeout);
  }

  private disposition(trigger: Trigger): Disposition {
    if (!this.options.leadership.mayAct())
      return { kind: 'plan', reason: `not the leader (${this.options.leadership.describe()})` };
    if (this.state.mode === 'passive') return { kind: 'plan', reason: 'passive mode' };
    if (this.state.mode === 'manual' && trigger !== 'operator')
      return { kind: 'defer', reason: 'manual mode: deferred, only operator commands act' };
    return { kind: 'act', reason: 'active' };
  }

  private runner(dry: boolean): StepRunner {
    return new StepRunner(
      {
        journal: this.options.journal,
        log: this.log,
        metrics: this.options.metrics,
        actuators: this.options.actuators,
      },
      dry,
    );
  }

  private ctxBase(): Pick<OpContext, 'journal' | 'log'> {
    return { journal: this.options.journal, log: this.log };
  }

  private context(runner: StepRunner): OpContext {
    return {
      config: this.config,
      writerRole: this.writerRole,
      state: this.state,
      observations: this.observations,
      runner,
      gtid: this.gtid,
      positions: this.options.positions,
      journal: this.options.journal,
      log: this.log,
      metrics: this.options.metrics,
      dropped: this.dropped,
      vipNotAdded: (role, ip, host) => {
        if (!runner.dry) this.vipRetries.set(ip, { role, host });
      },
      leaseLapsed: (oldWriter) =>
        runner.dry
          ? Promise.resolve({ ok: true, detail: 'planned', agent: false })
          : this.agents.awaitLeaseLapse(oldWriter, (entry) => note(this.ctxBase(), entry)),
      agentAnswering: (host) => this.agents.answering(host),
      grantLease: (host) =>
        runner.dry
          ? Promise.resolve({ ok: true, detail: 'planned' })
          : this.agents.grantLease(host, this.state),
      now: this.now,
      persist: async () => {
        if (!runner.dry) await this.persist();
      },
    };
  }

  private async persist(): Promise<void> {
    this.state.updatedAt = this.now();
    await this.options.store.save(structuredClone(this.state));
    this.lastSaved = this.signature();
  }

  private signature(): string {
    return JSON.stringify({ ...this.state, updatedAt: 0 });
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.lock.then(work, work);
    this.lock = next.catch(() => undefined);
    return next;
  }

  private mergeIncoming(incoming: ClusterState | undefined): void {
    if (!incoming) return;
    this.state.cluster = incoming.cluster || this.state.cluster;
    for (const [host, theirs] of Object.entries(incoming.hosts)) {
      const mine = this.state.hosts[host];
      if (!mine || theirs.since >= mine.since) this.state.hosts[host] = structuredClone(theirs);
    }
  }

  private refuse(event: string, host: string, reason: string, role?: string): OperationResult {
    note(this.ctxBase(), { phase: 'refused', event, host, role, reason });
    return refused(reason);
  }

  /** Journals a lasting condition once, again only after it changed or cleared. */
  private condition(key: string, value: string, write: () => void): void {
    this.conditionsThisCycle.add(key);
    if (this.conditions.get(key) === value) return;
    this.conditions.set(key, value);
    write();
  }

  private flushPlanned(entries: JournalDraft[]): void {
    for (const entry of entries) {
      this.options.journal.append(entry);
      this.log.info(
        { event: entry.event, host: entry.host, role: entry.role, outcome: entry.outcome },
        entry.detail ?? entry.reason ?? entry.event,
      );
    }
  }

  private journalOnly(entry: JournalDraft): void {
    this.options.journal.append(entry);
    this.log.info({ event: entry.event, host: entry.host }, entry.reason ?? entry.event);
  }

  /** Invariant 4 for `writer`, with what the agents saw of it. */
  private evidence(writer: string): Evidence {
    return writerDeathEvidence(writer, {
      config: this.config,
      state: this.state,
      observations: this.observations,
      agents: this.agents.observerViews(writer),
      lostSince: this.lostSince.get(writer),
    });
  }

  /**
   * DESIGN.md invariant 6: every host's agent gets the whole set of VIPs its roles give it, every
   * cycle. Nothing is sent when this manager may not act or only plans.
   */
  private exchangeWithAgents(): void {
    if (!this.options.leadership.mayAct() || this.state.mode === 'passive') return;
    this.agents.exchange(this.state);
  }

  /**
   * The writer the manager lost while the other hosts reached it all along comes back from
   * HARD_OFFLINE to AWAITING_RECOVERY like any host; but nothing happened to it, only to the
   * manager's path. Holding it would move the writer away for nothing: it is ONLINE again, and the
   * journal says why. A restart (held) or a failover in between (no longer the writer) is not this.
   */
  private readmitWriterSeenByOthers(): void {
    const writer = holderOf(this.state.roles, this.writerRole);
    for (const host of [...this.seenByOthersWhileLost]) {
      const record = this.state.hosts[host];
      const obs = this.observations.get(host);
      if (host !== writer) {
        this.seenByOthersWhileLost.delete(host);
        continue;
      }
      if (!obs?.reachable || !record) continue;
      this.seenByOthersWhileLost.delete(host);
      if (record.state !== 'AWAITING_RECOVERY' || record.held) continue;
      const reason = `the manager lost ${host} but the other hosts reached it throughout (the manager's path was broken): it stays the writer, ONLINE`;
      this.state.hosts[host] = { ...setOnlineRecord(record, this.now()).record, reason };
      note(this.ctxBase(), {
        phase: 'decision',
        event: 'writer.readmitted',
        host,
        role: this.writerRole,
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
  private liftWriterReplicationDrops(): void {
    const writer = holderOf(this.state.roles, this.writerRole);
    const roles = writer ? this.dropped.get(writer) : undefined;
    if (!writer || !roles) return;
    for (const role of [...roles]) {
      const cause = this.dropCauses.get(`${writer}\u0000${role}`);
      if (!cause || !REPLICATION_ALERTS.has(cause)) continue;
      roles.delete(role);
      this.dropCauses.delete(`${writer}\u0000${role}`);
      note(this.ctxBase(), {
        phase: 'decision',
        event: 'alert.drop_lifted',
        host: writer,
        role,
        reason: `${writer} is the writer now: ${cause} about its own replication is not held against it; ${role} may return`,
      });
    }
    this.syncMaps();
  }

  /** Target of a planned switchover away from the live writer (see chooseSwitchoverTarget). */
  private switchoverTarget(ctx: OpContext, writer: string): CandidateChoice {
    return chooseSwitchoverTarget(
      ctx,
      writer,
      [],
      (host) => this.errantOf(host, writer),
      (host) => {
        const replication = this.observations.get(host)?.replication;
        return (
          replication !== undefined &&
          replicatesFrom(replication, writer, this.config) &&
          ioConnected(replication)
        );
      },
    );
  }

  /** Hosts whose transactions the writer lacked, confirmed in two cycles: never promoted. */
  private divergedHosts(): string[] {
    return [...this.errantConfirmed]
      .filter(([, signature]) => signature !== '')
      .map(([host]) => host);
  }

  /** Transactions `host` has that `writer` lacks, from the latest observations ([] when either is unknown). */
  private errantOf(host: string, writer: string): string[] {
    const hostView = gtidViewOf(
      this.observations.get(host),
      this.gtid.merge,
      this.serverIds.get(host),
    );
    const writerView = gtidViewOf(
      this.observations.get(writer),
      this.gtid.merge,
      this.serverIds.get(writer),
    );
    if (!hostView || !writerView) return [];
    return errantTransactions({
      host: hostView,
      writer: writerView,
      gtid: this.gtid,
      promotion: this.promotionFor(host, writer),
    });
  }

  /**
   * Errant transactions from live reads, for decisions an operator waits on: the host is read
   * first, then the writer, so whatever the host received from the writer is in the writer's
   * later read. Unreadable: say so; never guess.
   */
  private async liveErrant(
    host: string,
    writer: string,
  ): Promise<{ ok: true; errant: string[] } | { ok: false; reason: string }> {
    let hostView: GtidView;
    try {
      hostView = await this.options.positions.gtidView(host);
    } catch (error) {
      return {
        ok: false,
        reason: `cannot read ${host}'s GTID state live (${(error as Error).message}); it is needed to rule out errant transactions: try again`,
      };
    }
    let writerView: GtidView;
    try {
      writerView = await this.options.positions.gtidView(writer);
    } catch (error) {
      return {
        ok: false,
        reason: `cannot read the writer ${writer}'s GTID state live (${(error as Error).message}); it is needed to rule out errant transactions on ${host}: try again`,
      };
    }
    return {
      ok: true,
      errant: errantTransactions({
        host: hostView,
        writer: writerView,
        gtid: this.gtid,
        promotion: this.promotionFor(host, writer),
      }),
    };
  }

  private promotionFor(host: string, writer: string): ClusterState['lastPromotion'] {
    const promotion = this.state.lastPromotion;
    return promotion && promotion.from === host && promotion.host === writer
      ? promotion
      : undefined;
  }

  /**
   * After a failover the old writer may come back with writes that never reached the new one.
   * Reported (journal + switchyard_errant_transactions) once seen in two cycles in a row, so a
   * replica sampled a moment after its master does not raise a false alarm.
   */
  private reportErrant(): void {
    const writer = holderOf(this.state.roles, this.writerRole);
    for (const host of Object.keys(this.config.hosts)) {
      if (!writer || host === writer) {
        this.options.metrics?.errantTransactions.set({ host }, 0);
        this.errantSeen.delete(host);
        continue;
      }
      const writerObs = this.observations.get(writer);
      const hostObs = this.observations.get(host);
      if (!writerObs?.reachable || !hostObs?.reachable) continue; // unknown: keep the last report
      const missing = this.errantOf(host, writer);
      const signature = missing.join(',');
      const previous = this.errantSeen.get(host);
      this.errantSeen.set(host, signature);
      if (signature !== previous) continue;
      const confirmed = this.errantConfirmed.get(host);
      if (signature === confirmed) continue;
      this.errantConfirmed.set(host, signature);
      const count = countTransactions(missing);
      this.options.metrics?.errantTransactions.set({ host }, count);
      if (missing.length > 0) {
        note(this.ctxBase(), {
          phase: 'note',
          event: 'errant.detected',
          host,
          reason: `${host} has ${count} transaction(s) the writer ${writer} lacks: ${missing.join(', ')}`,
          inputs: { writer, missing },
          level: 'warn',
        });
      } else if (confirmed !== undefined) {
        note(this.ctxBase(), {
          phase: 'note',
          event: 'errant.cleared',
          host,
          reason: `${host} no longer has transactions the writer ${writer} lacks`,
        });
      }
    }
  }

  private exportMetrics(): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    metrics.setMode(this.state.mode);
    metrics.roleIpAssigned.reset();
    for (const [role, ips] of Object.entries(this.state.roles)) {
      for (const [ip, host] of Object.entries(ips))
        if (host && hasVip(ip)) metrics.roleIpAssigned.set({ role, ip, host }, 1);
    }
    metrics.alertingPipelineUp.set(this.pipelineUp() ? 1 : 0);
  }
}

function deferredEntry(entry: JournalDraft, reason: string): JournalDraft {
  return { ...entry, outcome: 'skipped', reason: `${reason}: ${entry.reason ?? ''}`.trim() };
}
