import type { AgentExchange } from '../actuator/agent-exchange.js';
import type { ClusterState, ClusterStateStore } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Journal } from '../journal/journal.js';
import type { Leadership } from '../leadership/leadership.js';
import { silentLogger, type Logger } from '../log.js';
import { mariadbGtid, type GtidOps } from '../mysql/gtid.js';
import { AgentViews } from './agent-views.js';
import { HandledAlerts } from './alerts.js';
import type { EngineConfig, OpContext, PositionReader } from './context.js';
import { writerDeathEvidence, type Evidence } from './evidence.js';
import { analyze, type ClusterSnapshot } from '../analysis/analyze.js';
import { SITUATION_NAMES, type Analysis } from '../analysis/types.js';
import { note, refused } from './operation.js';
import { exportEngineState } from '../exporter/engine-state.js';
import { Hooks } from '../hooks/hooks.js';
import type { HaproxyRoutes } from '../routing/haproxy-routes.js';
import { holderOf } from './roles.js';
import { StepRunner, type Actuators, type JournalDraft } from './steps.js';
import type { OperationResult } from './types.js';

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
  /** GTID arithmetic; default the MariaDB one of src/mysql/gtid.ts (tests may hand in their own). */
  gtid?: GtidOps;
  /** Name of the exclusive role whose holder is the writable host. Default "writer". */
  writerRole?: string;
  /** The per-cycle exchange with the hosts' agents (VIP sets, writer probes, lease). */
  agents?: AgentExchange;
  /** Default: the config's `hooks`, journalled in `journal`. */
  hooks?: Hooks;
  /** HAProxy instances driven through their runtime API (routing.haproxy), when configured. */
  routes?: Pick<HaproxyRoutes, 'converge' | 'follow'>;
  now?: () => number;
}

/** What started an engine run: it decides whether the run acts, only plans, or defers. */
export type Trigger = 'monitor' | 'alert' | 'operator' | 'startup';
export type Disposition = { kind: 'act' | 'plan' | 'defer'; reason: string };

export function emptyState(config: EngineConfig, now = Date.now()): ClusterState {
  return {
    version: 1,
    cluster: config.cluster,
    mode: config.mode,
    hosts: {},
    roles: {},
    updatedAt: now,
  };
}

/**
 * The engine's state and the helpers every trigger shares: the lock, the dry-run or acting step
 * runner, the operation context handed to the procedures, persistence, journaling of lasting
 * conditions, and the writer-death evidence. The triggers (cycle.ts, alert-handling.ts,
 * operator.ts, startup-reconcile.ts) are functions over one EngineCore; engine.ts is the facade
 * that owns it and takes the lock for each entry point.
 *
 * Ownership of ClusterState: the monitor owns host records (states, failures), the engine owns
 * roles, mode and the in-flight operation.
 */
/**
 * How stale the saved uptimes may get. A restart is told by a smaller uptime than the one saved:
 * after a manager restart, a server that restarted meanwhile and has been up longer than its
 * saved uptime (at most this much older than the last reading) is not noticed as restarted,
 * as with any reading taken before the manager stopped.
 */
export const STATE_REFRESH_MS = 60_000;

export class EngineCore {
  state: ClusterState;
  observations = new Map<string, HostObservation>();
  /** Mirrors state.dropped / state.pinned (persisted), as maps for the pure functions. */
  readonly dropped = new Map<string, Set<string>>();
  readonly pinned = new Map<string, string>();
  readonly handledAlerts = new HandledAlerts();
  readonly config: EngineConfig;
  readonly log: Logger;
  readonly gtid: GtidOps;
  readonly writerRole: string;
  readonly now: () => number;
  private lock: Promise<unknown> = Promise.resolve();
  started = false;
  lastPipelineAt?: number;
  lastPlanSignature = '';
  /** Conditions journaled once while they last (no failover because..., no eligible host ...). */
  conditions = new Map<string, string>();
  conditionsThisCycle = new Set<string>();
  /** host -> errant set seen last cycle / confirmed (two cycles in a row). */
  errantSeen = new Map<string, string>();
  errantConfirmed = new Map<string, string>();
  /** Automatic switchovers (prefer, ineligible holder) wait after a failed one: each try is a write pause. */
  switchoverBackoffUntil = 0;
  /** Last server_id seen per host (an unreachable host's is remembered). */
  readonly serverIds = new Map<string, number>();
  pathBroken = false;
  /** host + role -> the alert that dropped it (in memory: after a restart, drops wait for their resolve). */
  readonly dropCauses = new Map<string, string>();
  /** Writers the manager lost while other hosts still reached them (its own path was broken). */
  readonly seenByOthersWhileLost = new Set<string>();
  /** The state as last saved (see signature()), so any unsaved change is saved next cycle. */
  lastSaved = '';
  /** When the state was last saved (epoch ms), for the refresh of what signature() leaves out. */
  lastSavedAt = 0;
  private lastSavedReadings = '';
  /** The save the store is doing, and the one that begins after it (see persist()). */
  private runningSave?: Promise<void>;
  private nextSave?: Promise<void>;
  readonly agents: AgentViews;
  readonly hooks: Hooks;
  /** Host states as on_state_change hooks last saw them (see cycle.ts). */
  hookStates?: Map<string, string>;
  /** Manager clock: start of the first of a host's current run of failed checks. */
  readonly lostSince = new Map<string, number>();
  /**
   * The writer replicas follow (keepReplicasOnWriter), and from when on a replica's observation
   * counts as taken while it was the writer (0: the writer this manager started with).
   */
  followedWriter?: { host: string; since: number };
  /** Writer VIPs whose add failed during a move: ip -> role and host, retried every cycle. */
  readonly vipRetries = new Map<string, { role: string; host: string }>();
  /** Hosts an Alertmanager silence holds automation off (src/maintenance); not the host an operator command names. */
  maintenance: ReadonlySet<string> = new Set();
  /**
   * A failover waiting out the old writer's lease, while it waits (runFailover holds the lock
   * meanwhile, so `why` reads this instead of waiting for the lock).
   */
  leaseWait?: { writer: string; since: number; deadline: number; reason: string };
  /** The last lease release whose fence the old writer's agent could not prove. */
  fenceUnproved?: { host: string; at: number; reason: string };

  constructor(
    readonly options: EngineOptions,
    initial?: ClusterState,
  ) {
    this.config = options.config;
    this.log = options.log ?? silentLogger;
    this.gtid = options.gtid ?? mariadbGtid;
    this.writerRole = options.writerRole ?? 'writer';
    this.now = options.now ?? Date.now;
    this.agents = new AgentViews(options.agents, options.config, this.writerRole, this.now);
    this.hooks =
      options.hooks ??
      new Hooks({ config: options.config.hooks, journal: options.journal, log: this.log });
    this.state = initial ? structuredClone(initial) : emptyState(options.config, this.now());
    for (const [host, roles] of Object.entries(this.state.dropped ?? {}))
      this.dropped.set(host, new Set(roles));
    for (const [role, host] of Object.entries(this.state.pinned ?? {})) this.pinned.set(role, host);
    this.exportMetrics();
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
      this.exportMetrics();
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

  notePipelineAlive(): void {
    this.lastPipelineAt = this.now();
    this.options.metrics?.alertingPipelineUp.set(1);
  }

  loadPinned(): void {
    this.pinned.clear();
    for (const [role, host] of Object.entries(this.state.pinned ?? {})) this.pinned.set(role, host);
  }

  /** Keeps the persisted copies of drops and pins in step with the maps. */
  syncMaps(): void {
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

  backOffSwitchovers(): void {
    this.switchoverBackoffUntil =
      this.now() + Math.max(60_000, 2 * this.config.actuator.catchup_timeout);
  }

  disposition(trigger: Trigger): Disposition {
    if (!this.options.leadership.mayAct())
      return { kind: 'plan', reason: `not the leader (${this.options.leadership.describe()})` };
    if (this.state.mode === 'passive') return { kind: 'plan', reason: 'passive mode' };
    if (this.state.mode === 'manual' && trigger !== 'operator')
      return { kind: 'defer', reason: 'manual mode: deferred, only operator commands act' };
    return { kind: 'act', reason: 'active' };
  }

  runner(dry: boolean): StepRunner {
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

  ctxBase(): Pick<OpContext, 'journal' | 'log'> {
    return { journal: this.options.journal, log: this.log };
  }

  context(runner: StepRunner): OpContext {
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
          : this.watchedLeaseLapse(oldWriter),

      agentAnswering: (host) => this.agents.answering(host),
      hooks: runner.dry ? undefined : this.hooks,
      routes:
        runner.dry || !this.options.routes
          ? undefined
          : {
              follow: async (reason) => {
                await this.options.routes?.follow(() => this.state, reason);
              },
            },
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

  /** The lease gate of one failover, with what it journals kept for `why` while it runs. */
  private watchedLeaseLapse(oldWriter: string): ReturnType<OpContext['leaseLapsed']> {
    // A fence left unproved by an earlier failover says nothing about this one.
    this.fenceUnproved = undefined;
    return this.agents
      .awaitLeaseLapse(
        oldWriter,
        (entry) => {
          this.watchLeaseGate(oldWriter, entry);
          note(this.ctxBase(), entry);
        },
        () => this.state,
      )
      .finally(() => {
        this.leaseWait = undefined;
      });
  }

  /** Keeps what the lease gate journals (a wait and its deadline, an unproved fence) for `why`. */
  private watchLeaseGate(
    oldWriter: string,
    entry: { event: string; reason: string; inputs?: Record<string, unknown> },
  ): void {
    if (entry.event === 'failover.lease_wait') {
      const deadline = entry.inputs?.deadline;
      this.leaseWait = {
        writer: oldWriter,
        since: this.now(),
        deadline: typeof deadline === 'number' ? deadline : this.now() + this.config.lease,
        reason: entry.reason,
      };
    } else if (entry.event === 'failover.fence_unproved')
      this.fenceUnproved = { host: oldWriter, at: this.now(), reason: entry.reason };
  }

  /**
   * Saves the state; resolves once a save that began after this call is done, so the caller's
   * change is in it. Saves reach the store one at a time (the etcd store's compare-and-swap
   * would take two at once for another manager's write), and the calls made while one runs
   * share the next, which saves the state as it is when it begins: a writer move starts the save
   * of each step without waiting (executor.ts), and its five records before the promotion make
   * two writes, not five.
   */
  persist(): Promise<void> {
    if (this.nextSave) return this.nextSave;
    const running = this.runningSave;
    if (!running) return this.saveNow();
    const next = running
      .catch(() => undefined)
      .then(() => {
        this.nextSave = undefined;
        return this.saveNow();
      });
    this.nextSave = next;
    return next;
  }

  private async saveNow(): Promise<void> {
    this.state.updatedAt = this.now();
    const signature = this.signature();
    const readings = this.readings();
    const save = this.options.store.save(structuredClone(this.state));
    this.runningSave = save;
    try {
      await save;
    } finally {
      if (this.runningSave === save) this.runningSave = undefined;
    }
    this.lastSaved = signature;
    this.lastSavedAt = this.now();
    this.lastSavedReadings = readings;
  }

  /** The per-cycle readings signature() leaves out. */
  private readings(): string {
    return JSON.stringify(
      Object.entries(this.state.hosts).map(([name, record]) => [
        name,
        record.lastUptimeSeconds,
        record.lastConnectionId,
        record.bootedBy,
        record.reason,
      ]),
    );
  }

  /** Saves what a cycle left unsaved, readings included (the daemon stops). */
  async flush(): Promise<void> {
    if (this.signature() !== this.lastSaved || this.readings() !== this.lastSavedReadings)
      await this.persist();
  }

  /**
   * The state without what changes every cycle on a healthy host (its uptime; its check
   * connection's id, which changes at each fresh login; the reason's text, which carries the
   * lag of each check): a change here is saved at once, those only with it or every
   * STATE_REFRESH_MS. Saved every cycle, they cost a write and two fsyncs per cluster per second
   * (a fleet of 100 clusters in one process saved 95 times a second for the lag in the reason).
   * A change of state, hold or since comes with every reason that matters, so it is saved with it.
   */
  signature(): string {
    const hosts = Object.fromEntries(
      Object.entries(this.state.hosts).map(([name, record]) => [
        name,
        {
          ...record,
          lastUptimeSeconds: undefined,
          lastConnectionId: undefined,
          bootedBy: undefined,
          reason: undefined,
        },
      ]),
    );
    return JSON.stringify({ ...this.state, hosts, updatedAt: 0 });
  }

  /** Due a save: a change that matters, or the per-cycle readings last saved too long ago. */
  unsaved(): boolean {
    return this.signature() !== this.lastSaved || this.now() - this.lastSavedAt >= STATE_REFRESH_MS;
  }

  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.lock.then(work, work);
    this.lock = next.catch(() => undefined);
    return next;
  }

  mergeIncoming(incoming: ClusterState | undefined): void {
    if (!incoming) return;
    this.state.cluster = incoming.cluster || this.state.cluster;
    for (const [host, theirs] of Object.entries(incoming.hosts)) {
      const mine = this.state.hosts[host];
      if (!mine || theirs.since >= mine.since) {
        this.state.hosts[host] = structuredClone(theirs);
        continue;
      }
      // An operator change after the monitor's last transition keeps its state, but what the
      // monitor last saw of the server is newer than anything here: without it a server restarted
      // again soon after a set-online would be compared with stale figures and not be held.
      if (theirs.lastUptimeSeconds !== undefined) mine.lastUptimeSeconds = theirs.lastUptimeSeconds;
      if (theirs.lastConnectionId !== undefined) mine.lastConnectionId = theirs.lastConnectionId;
      if (theirs.bootedBy !== undefined) mine.bootedBy = theirs.bootedBy;
      if (theirs.processGoneAt !== undefined) mine.processGoneAt = theirs.processGoneAt;
      else delete mine.processGoneAt;
    }
  }

  refuse(event: string, host: string, reason: string, role?: string): OperationResult {
    note(this.ctxBase(), { phase: 'refused', event, host, role, reason });
    return refused(reason);
  }

  /** Journals a lasting condition once, again only after it changed or cleared. */
  condition(key: string, value: string, write: () => void): void {
    this.conditionsThisCycle.add(key);
    if (this.conditions.get(key) === value) return;
    this.conditions.set(key, value);
    write();
  }

  flushPlanned(entries: JournalDraft[]): void {
    for (const entry of entries) {
      this.options.journal.append(entry);
      this.log.info(
        { event: entry.event, host: entry.host, role: entry.role, outcome: entry.outcome },
        entry.detail ?? entry.reason ?? entry.event,
      );
    }
  }

  journalOnly(entry: JournalDraft): void {
    this.options.journal.append(entry);
    this.log.info({ event: entry.event, host: entry.host }, entry.reason ?? entry.event);
  }

  /** Invariant 4 for `writer`, with what the agents saw of it. */
  evidence(writer: string): Evidence {
    return writerDeathEvidence(writer, {
      config: this.config,
      state: this.state,
      observations: this.observations,
      agents: this.agents.observerViews(writer),
      lostSince: this.lostSince.get(writer),
    });
  }

  /**
   * The cycle's snapshot for the analysis: what the engine decided with, read without the lock
   * (a failover waiting out a lease holds it; `why` must answer meanwhile). All of it is read in
   * one synchronous pass, so it is one consistent moment.
   */
  analysisSnapshot(
    windows: Record<string, { endsAt?: string; silence?: string; comment?: string }> = {},
  ): ClusterSnapshot {
    const writer = holderOf(this.state.roles, this.writerRole);
    const agents = new Map<
      string,
      { answering: boolean; leaseLapsed: boolean; held?: readonly string[] }
    >();
    for (const host of Object.keys(this.config.hosts)) {
      const summary = this.agents.summary(host);
      if (summary) agents.set(host, summary);
    }
    const leaseWait = this.leaseWait && {
      ...this.leaseWait,
      deadline: this.agents.leaseDeadline(this.leaseWait.writer) ?? this.leaseWait.deadline,
    };
    const errant = new Map<string, string[]>();
    for (const [host, signature] of this.errantConfirmed)
      if (signature !== '') errant.set(host, signature.split(','));
    return {
      at: this.now(),
      config: this.config,
      writerRole: this.writerRole,
      state: structuredClone(this.state),
      observations: new Map(this.observations),
      gtid: this.gtid,
      disposition: this.disposition('monitor'),
      monitorDecides: this.config.triggers.monitor || !this.pipelineUp(),
      maintenance: new Map([...this.maintenance].map((host) => [host, windows[host] ?? {}])),
      dropped: this.dropped,
      pinned: this.pinned,
      agents,
      observerViews: writer ? this.agents.observerViews(writer) : undefined,
      lostSince: new Map(this.lostSince),
      errant,
      conditions: new Map(this.conditions),
      ...(leaseWait ? { leaseWait } : {}),
      // Shown while the failover that found it is still under way.
      ...(this.fenceUnproved && this.state.operation ? { fenceUnproved: this.fenceUnproved } : {}),
      managerPathBroken: this.pathBroken,
      switchoverBackoffUntil: this.switchoverBackoffUntil,
    };
  }

  analysis(
    options: {
      host?: string;
      maintenance?: Record<string, { endsAt?: string; silence?: string; comment?: string }>;
    } = {},
  ): Analysis {
    return analyze(this.analysisSnapshot(options.maintenance), { host: options.host });
  }

  /** switchyard_situation: 1 for each situation named now, 0 for the others (one writer: the cycle). */
  exportSituations(): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    let named: Set<string>;
    try {
      named = new Set(this.analysis().situations.map((situation) => situation.name));
    } catch (error) {
      // A report must never stop the cycle that keeps the invariants.
      this.log.warn(
        { event: 'analysis.failed', err: error as Error },
        'the analysis failed; switchyard_situation keeps its last values',
      );
      return;
    }
    for (const situation of SITUATION_NAMES)
      metrics.situation.set({ situation }, named.has(situation) ? 1 : 0);
  }

  /** The state's gauges, through their one writer (src/exporter/engine-state.ts). */
  exportMetrics(): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    exportEngineState(metrics, {
      config: this.config,
      writerRole: this.writerRole,
      state: this.state,
      pipelineUp: this.pipelineUp(),
    });
  }
}
