import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { agentDispatcher, SwitchyardActuator } from '../actuator/actuator.js';
import { AgentExchange } from '../actuator/agent-exchange.js';
import { buildStatus } from '../api/status-routes.js';
import type { Analysis } from '../analysis/types.js';
import { startBackupSchedule } from '../backup/schedule.js';
import { startChecksumSchedule, type ChecksumSchedule } from '../checksum/run.js';
import type { LoadedConfig } from '../config/load.js';
import { readSecret } from '../config/secrets.js';
import type { ClusterState, ClusterStateStore } from '../domain/cluster-state.js';
import { Engine } from '../engine/engine.js';
import { MysqlPositionReader } from '../engine/position-reader.js';
import { holderOf } from '../engine/roles.js';
import { SwitchyardMetrics } from '../exporter/metrics.js';
import { updateMetrics } from '../exporter/update.js';
import { createEtcdClient } from '../ha/etcd-client.js';
import { EtcdLeadership } from '../ha/etcd-leadership.js';
import { EtcdStateStore } from '../ha/etcd-store.js';
import { FencedActuator } from '../ha/fenced-actuator.js';
import { TermJournal } from '../ha/term-journal.js';
import { FileJournal, type Journal } from '../journal/journal.js';
import { SingleProcessLeadership, type Leadership } from '../leadership/leadership.js';
import type { Logger } from '../log.js';
import { SilenceWatcher } from '../maintenance/silences.js';
import { HeartbeatWriter } from '../monitor/heartbeat.js';
import { Monitor, type MonitorCycle } from '../monitor/monitor.js';
import { QuickRechecks } from '../monitor/quick-rechecks.js';
import { formatPosition, mergePositions } from '../mysql/gtid.js';
import { registerMysqlTls } from '../mysql/tls.js';
import { HaproxyRoutes } from '../routing/haproxy-routes.js';
import { FileStateStore } from '../state/file-store.js';
import { BackupCatalogues, MANAGER_CATALOGUE } from '../transfer/backup-catalogues.js';
import { agentStatus } from './agent-status.js';
import type { FleetPriority } from './fleet-priority.js';
import type { AutoRejoinReport } from './auto-rejoin.js';

export interface ClusterRuntimeOptions {
  config: LoadedConfig;
  log: Logger;
  leadership?: Leadership;
  /** Node's process metrics (process_*, nodejs_*) in this cluster's registry; default true. Several clusters in one process export them once. */
  processMetrics?: boolean;
  /** This manager's URL as other managers should forward to (ha); default from `listen`. */
  advertiseUrl?: string;
  /** Several clusters in one process: a cluster that lost its writer goes first (see FleetPriority). */
  priority?: FleetPriority;
}

/** How long stop() waits for transfer jobs to finish their last steps. */
const STOP_SETTLE_MS = 10_000;

/** How often the backup catalogues are listed for switchyard_backup_age_seconds (and after every backup). */
const BACKUP_CATALOGUE_REFRESH_MS = 5 * 60_000;

/**
 * Everything one cluster needs, without the HTTP listener: monitor -> engine -> metrics every
 * monitor.interval, the heartbeat writer, leadership (ha), the checksum and backup schedules.
 * The engine owns and persists the cluster state; the monitor works on the state the engine
 * returned from the previous cycle. Several of these share one process and one listener
 * (Daemon), each with its own loop so that a slow host of one cluster never delays another's.
 */
export class ClusterRuntime {
  readonly metrics: SwitchyardMetrics;
  readonly journal: Journal;
  readonly store: ClusterStateStore;
  readonly engine: Engine;
  readonly leadership: Leadership;
  readonly agents: AgentExchange;
  /** Where the cluster's backups are kept (backup.dir, agents' backup_dir): listing, retention, their age. */
  readonly backupCatalogues: BackupCatalogues;
  private readonly monitor: Monitor;
  private readonly heartbeat: HeartbeatWriter;
  private state: ClusterState;
  private lastCycle?: MonitorCycle;
  /** Called after every monitor cycle with its result (e.g. monitor.auto_rejoin). */
  readonly afterCycle: Array<(cycle: MonitorCycle) => void> = [];
  /** Work that journals when it ends (transfer jobs finishing): awaited, bounded, by stop(). */
  readonly settleBeforeStop: Array<() => Promise<unknown>> = [];
  /** routing.haproxy: the HAProxys driven through their runtime API (their last reports for `show`). */
  private readonly routes: HaproxyRoutes | undefined;
  /** The last automatic rejoin, when monitor.auto_rejoin runs (set by the transfer routers). */
  autoRejoinReport?: () => AutoRejoinReport | undefined;
  private stopping = false;
  private loopDone?: Promise<void>;
  private wake?: () => void;
  /** A cycle was asked for while one ran: the next one starts without waiting. */
  private cycleRequested = false;
  /**
   * After the writer's connection broke: the quick looks, while the writer's kernel keeps
   * answering that nothing serves and no failover happened yet. A replica's IO thread hears the
   * same close a few milliseconds later than the manager, and a check can land in the dying
   * process's backlog; waiting a whole interval for either would waste what the watch gained.
   */
  private readonly quickRechecks = new QuickRechecks();
  /** When this cluster last lost its writer and no cycle since has decided on it (FleetPriority). */
  private urgentSince?: number;
  private schedules: Array<{ stop(): void }> = [];
  private readonly log: Logger;
  /** With triggers.alertmanager_url: Alertmanager silences as maintenance windows. */
  private readonly silences?: SilenceWatcher;
  /** Several managers (config `ha`): etcd leadership and state; undefined for a single manager. */
  private readonly ha?: { client: Etcd3; leadership: EtcdLeadership; store: EtcdStateStore };
  /** The term whose cluster state the engine has taken over; the engine acts only in that term. */
  private adoptedTerm?: number;
  private leaderChangesSeen = 0;

  constructor(readonly options: ClusterRuntimeOptions) {
    const { config, log } = options;
    this.log = log;
    this.metrics = new SwitchyardMetrics(config.cluster, {
      processMetrics: options.processMetrics,
    });
    this.metrics.leaderSource = () => this.leadership.mayAct();
    const fileJournal = new FileJournal(join(config.state_dir, 'journal.jsonl'), {
      maxBytes: config.journal.max_size,
      keep: config.journal.keep,
    });
    let loaded: { state?: ClusterState; problem?: string } = {};
    if (config.ha) {
      const client = createEtcdClient(config.ha.etcd);
      const leadership = new EtcdLeadership({
        client,
        prefix: config.ha.etcd.prefix,
        cluster: config.cluster,
        leaseMs: config.ha.lease,
        timeoutMs: config.ha.etcd.timeout,
        id: `${hostname()}:${process.pid}`,
        url: options.advertiseUrl ?? advertisedUrl(config),
        log: log.child({ component: 'ha' }),
      });
      const store = new EtcdStateStore({
        client,
        cluster: config.cluster,
        leadership,
        timeoutMs: config.ha.etcd.timeout,
        log: log.child({ component: 'ha' }),
      });
      this.ha = { client, leadership, store };
      this.store = store;
      this.journal = new TermJournal(fileJournal, () => leadership.term());
      // The engine acts only once it has taken over the cluster state of the term it leads.
      this.leadership = {
        mayAct: () => leadership.mayAct() && leadership.term() === this.adoptedTerm,
        describe: () => leadership.describe(),
        term: () => (leadership.term() === this.adoptedTerm ? leadership.term() : undefined),
      };
    } else {
      const store = new FileStateStore(config.state_dir, config.cluster);
      this.store = store;
      this.journal = fileJournal;
      this.leadership = options.leadership ?? new SingleProcessLeadership();
      loaded = store.loadChecked();
    }
    // mysql.tls for every connection to the cluster's hosts: monitor, heartbeat, actuator, positions.
    registerMysqlTls(Object.values(config.hosts), config.mysql.tls);

    let initial = loaded.state;
    if (loaded.problem) {
      // A state we cannot trust must not drive failovers: start passive and say why.
      log.error(
        { event: 'state.unusable', problem: loaded.problem },
        'stored state unusable; starting passive',
      );
      this.journal.append({ phase: 'note', event: 'state.unusable', reason: loaded.problem });
      initial = {
        ...Engine.emptyState(config),
        mode: 'passive',
        modeReason: `started passive: ${loaded.problem}`,
      };
    }
    const switchyardLive = this.actuator(false);
    const live = this.ha
      ? new FencedActuator(
          switchyardLive,
          this.ha.leadership,
          this.ha.client,
          config.ha?.etcd.timeout ?? 1000,
        )
      : switchyardLive;
    this.backupCatalogues = new BackupCatalogues(config, {
      dispatcher: agentDispatcher(config),
      deps: { journal: this.journal, logger: log.child({ component: 'backup' }) },
    });
    this.metrics.backupNewestSource = () => this.backupCatalogues.newestFullBackups();
    const planner = this.actuator(true);
    this.agents = new AgentExchange({
      transport: live.agents,
      timeoutMs: Math.min(config.actuator.agent_timeout, Math.max(config.monitor.interval, 500)),
      journal: this.journal,
      log: log.child({ component: 'agents' }),
      metrics: this.metrics,
    });
    const endpointFor = (host: string) => {
      const entry = config.hosts[host];
      if (!entry) throw new Error(`unknown host ${host}`);
      return {
        host: entry.address,
        port: entry.port,
        user: config.mysql.user,
        password: readSecret(
          { file: config.mysql.password_file, env: config.mysql.password_env },
          'mysql.password',
        ),
        connectTimeoutMs: config.monitor.connect_timeout,
      };
    };
    this.routes =
      config.routing?.haproxy &&
      new HaproxyRoutes({
        config: config.routing.haproxy,
        roles: config.roles,
        hosts: Object.keys(config.hosts),
        writerRole: 'writer',
        journal: this.journal,
        log: log.child({ component: 'routing' }),
        metrics: this.metrics,
      });
    this.engine = new Engine(
      {
        config,
        store: this.store,
        actuators: { live, planner },
        positions: new MysqlPositionReader(endpointFor, (...positions) =>
          formatPosition(mergePositions(...positions)),
        ),
        journal: this.journal,
        leadership: this.leadership,
        metrics: this.metrics,
        log: log.child({ component: 'engine' }),
        agents: this.agents,
        routes: this.routes,
      },
      initial,
    );
    this.state = this.engine.snapshot();
    this.monitor = new Monitor({
      config,
      log: log.child({ component: 'monitor' }),
      metrics: this.metrics,
      onWriterLost: () => {
        this.quickRechecks.arm();
        this.urgentSince ??= Date.now();
        this.options.priority?.begin(this.name);
        this.cycleSoon();
      },
      // A hung writer closes nothing: its checks fail only after connect_timeout each, so the
      // first one should start as soon as the watch notices, not up to an interval later.
      // No priority over the fleet here: a writer that is merely slow stalls too, and its checks
      // wait connect_timeout whatever the others do.
      onWriterStalled: () => this.cycleSoon(),
    });
    this.heartbeat = new HeartbeatWriter({ config, log: log.child({ component: 'heartbeat' }) });
    if (config.triggers.alertmanager_url) {
      this.silences = new SilenceWatcher({
        url: config.triggers.alertmanager_url,
        cluster: config.cluster,
        hosts: Object.keys(config.hosts),
        // Every five monitor cycles, at most once a second.
        intervalMs: Math.max(1000, 5 * config.monitor.interval),
        journal: this.journal,
        log: log.child({ component: 'maintenance' }),
        metrics: this.metrics,
      });
    }
  }

  private actuator(dryRun: boolean): SwitchyardActuator {
    const { config, log } = this.options;
    // Decisions are journaled by the engine (before/after, with reasons); the actuator logs its steps.
    return new SwitchyardActuator(config, {
      dryRun,
      logger: log.child({ component: 'actuator' }),
      fencingToken: this.ha && !dryRun ? () => this.leadership.term?.() : undefined,
    });
  }

  get config(): LoadedConfig {
    return this.options.config;
  }

  get name(): string {
    return this.options.config.cluster;
  }

  /** Several managers (`ha`): the HTTP layer puts a follower guard in front of the control API. */
  get haEnabled(): boolean {
    return this.ha !== undefined;
  }

  status() {
    return buildStatus(this.config, this.lastCycle, this.engine.snapshot(), {
      leader: this.leadership.describe(),
      alertingPipelineUp: this.engine.pipelineUp(),
      maintenance: this.silences?.status(),
      agent: (host) => agentStatus(this.agents, host),
      conditions: this.engine.currentConditions(),
      autoRejoin: this.autoRejoinReport?.(),
      managerPathBroken: this.engine.managerPathBroken(),
      routes: this.routes?.report(),
    });
  }

  /** `switchyard why`: the engine's analysis, with the maintenance windows the silences give. */
  analysis(host?: string): Analysis {
    return this.engine.analysis({ host, maintenance: this.silences?.status().hosts });
  }

  /** When the last monitor cycle ended, for /readyz; undefined before the first. */
  lastCycleAt(): number | undefined {
    return this.lastCycle?.at;
  }

  /**
   * Leadership (ha), the heartbeat writer, silences, schedules, then the monitor loop. `listen`
   * names the listener in the journal's start note; the listener itself belongs to the process.
   * `firstCycleDelayMs` spreads the clusters of a fleet over the interval, so that their checks
   * do not all open their connections at the same instant every cycle.
   */
  async start(listen: string, firstCycleDelayMs = 0): Promise<void> {
    if (this.ha) {
      // The first round (lease, maybe the election) runs now; etcd unreachable is not fatal: the
      // manager follows (monitors, exports metrics) until it can reach etcd.
      await this.ha.leadership.start();
      await this.followLeader();
    }
    this.exportLeadership();
    this.journal.append({
      phase: 'note',
      event: 'daemon.started',
      reason: `listening on ${listen}, mode ${this.state.mode}, ${this.leadership.describe()}`,
    });
    const writerLookup = () => this.engine.holderOf('writer');
    // Several managers: only the leader writes heartbeats (followers measure lag from its rows).
    this.heartbeat.start(() => (this.ha && !this.leadership.mayAct() ? undefined : writerLookup()));
    this.silences?.start();
    const leads = () => this.leadership.mayAct();
    const checksum: ChecksumSchedule | undefined = startChecksumSchedule(this.config, {
      writerLookup,
      metrics: this.metrics,
      logger: this.log.child({ component: 'checksum' }),
      journal: this.journal,
      enabled: leads,
    });
    if (checksum) this.schedules.push(checksum);
    const backups = startBackupSchedule(
      this.config,
      Object.keys(this.config.hosts).filter((host) => host !== writerLookup()),
      {
        logger: this.log.child({ component: 'backup' }),
        journal: this.journal,
        enabled: leads,
        afterBackup: (host) => this.backupCatalogues.pruneAfterBackup(host, MANAGER_CATALOGUE),
      },
    );
    if (backups) this.schedules.push(backups);
    // switchyard_backup_age_seconds: the catalogues are listed now and then; the age itself is
    // computed at scrape time, so it keeps growing when no backup comes.
    void this.backupCatalogues.refresh();
    const catalogueTimer = setInterval(
      () => void this.backupCatalogues.refresh(),
      BACKUP_CATALOGUE_REFRESH_MS,
    );
    catalogueTimer.unref();
    this.schedules.push({ stop: () => clearInterval(catalogueTimer) });
    this.loopDone = this.loop(firstCycleDelayMs);
  }

  /** The mode the cluster starts in (for the process's start-up log). */
  get mode(): string {
    return this.state.mode;
  }

  /** One monitor cycle followed by the engine's decisions. */
  async cycleOnce(): Promise<void> {
    const startedAt = Date.now();
    try {
      await this.observeAndDecide();
    } finally {
      // The loss was decided on by a cycle that began after it: the other clusters go on.
      if (
        this.urgentSince !== undefined &&
        startedAt >= this.urgentSince &&
        !this.quickRechecks.armed
      ) {
        this.urgentSince = undefined;
        this.options.priority?.end(this.name);
      }
    }
  }

  private async observeAndDecide(): Promise<void> {
    if (this.ha) await this.syncLeadership();
    const observed = await this.monitor.observe(this.state);
    let cycle: MonitorCycle;
    let state: ClusterState;
    if (observed.network.ok) {
      if (this.silences) this.engine.setMaintenance(this.silences.update());
      // The state machine runs on the engine's records as they are now, under its lock: a
      // set-online, set-offline or failover that landed while the checks ran is built on.
      let advanced: MonitorCycle | undefined;
      state = await this.engine.onCycle(observed.observations, (current) => {
        advanced = this.monitor.advance(current, observed);
        return advanced.state;
      });
      cycle = advanced as MonitorCycle;
    } else {
      cycle = this.monitor.advance(this.state, observed);
      state = cycle.state;
      // The manager's own network is in doubt: it changes nothing and sends nothing to agents.
      this.log.warn(
        { event: 'daemon.network_freeze', detail: cycle.networkDetail },
        'network self-check failed: no decisions this cycle',
      );
    }
    this.state = state;
    this.lastCycle = { ...cycle, state };
    updateMetrics(this.metrics, this.lastCycle);
    this.exportLeadership();
    this.monitor.watchWriter(state);
    if (cycle.networkOk) for (const listener of this.afterCycle) listener(this.lastCycle);
    if (this.quickRechecks.armed && !this.writerProcessGone(cycle.observations, state))
      this.quickRechecks.disarm();
  }

  /** This cycle's check of the state's writer was refused or reset: its mysqld is gone or going. */
  private writerProcessGone(
    observations: MonitorCycle['observations'],
    state: ClusterState,
  ): boolean {
    const writer = holderOf(state.roles, 'writer');
    const observation = observations.find((item) => item.host === writer);
    return observation?.refusal !== undefined;
  }

  /** Runs the next cycle now rather than at the next interval (the writer's connection broke). */
  private cycleSoon(): void {
    if (this.wake) this.wake();
    else this.cycleRequested = true;
  }

  /** The leader's URL as etcd names it (this manager's own when it leads). */
  leaderUrl(): string | undefined {
    if (!this.ha) return undefined;
    return this.ha.leadership.leader()?.url || undefined;
  }

  /**
   * Several managers, before each cycle. Just won a term: read the cluster state from etcd
   * (which also sets the revision the next write is checked against) and hand it to the engine
   * with recovery, so an operation the previous leader left in flight is finished or undone
   * before anything else, as after a restart. Following: take the leader's state, for the read
   * APIs and so that a later win starts from it.
   */
  private async syncLeadership(): Promise<void> {
    const ha = this.ha as NonNullable<typeof this.ha>;
    const term = ha.leadership.term();
    if (term !== undefined && term !== this.adoptedTerm) {
      const stored = await ha.store.load();
      await this.engine.adopt(
        stored ?? { ...Engine.emptyState(this.config), hosts: this.state.hosts },
        { recover: true },
      );
      this.state = this.engine.snapshot();
      this.agents.restartKnowledge();
      this.adoptedTerm = term;
      const operation = this.state.operation
        ? `; in-flight ${this.state.operation.kind} of ${this.state.operation.role} to ${this.state.operation.to} (step ${this.state.operation.step}) is finished or undone first`
        : '';
      this.journal.append({
        phase: 'note',
        event: 'ha.leadership_gained',
        reason: `this manager leads term ${term}${stored ? '' : ' (no state in etcd yet)'}${operation}`,
      });
      this.log.warn({ event: 'ha.leadership_gained', term }, `leading term ${term}`);
      return;
    }
    if (term === undefined) {
      if (this.adoptedTerm !== undefined) {
        this.journal.append({
          phase: 'note',
          event: 'ha.leadership_lost',
          reason: `this manager no longer leads term ${this.adoptedTerm}: ${ha.leadership.describe()}`,
        });
        this.adoptedTerm = undefined;
      }
      await this.followLeader();
    }
  }

  /** A follower takes the leader's state from etcd; unreachable etcd keeps the last copy. */
  private async followLeader(): Promise<void> {
    const ha = this.ha as NonNullable<typeof this.ha>;
    try {
      const stored = await ha.store.load();
      if (!stored) return;
      await this.engine.adopt(stored, { recover: false });
      this.state = this.engine.snapshot();
    } catch (error) {
      this.log.debug(
        { event: 'ha.state_read_failed', err: (error as Error).message },
        'could not read the state from etcd',
      );
    }
  }

  private exportLeadership(): void {
    this.metrics.leader.set(this.leadership.mayAct() ? 1 : 0);
    if (!this.ha) return;
    this.metrics.leaderTerm.set(this.ha.leadership.leader()?.term ?? 0);
    const changes = this.ha.leadership.changes;
    if (changes > this.leaderChangesSeen)
      this.metrics.leaderChangesTotal.inc(changes - this.leaderChangesSeen);
    this.leaderChangesSeen = changes;
  }

  private async loop(firstCycleDelayMs: number): Promise<void> {
    const interval = this.config.monitor.interval;
    if (firstCycleDelayMs > 0) await this.pause(firstCycleDelayMs);
    while (!this.stopping) {
      if (this.options.priority && this.urgentSince === undefined) {
        const yielded = await this.options.priority.yieldTo(this.name, interval);
        if (yielded > 0) this.metrics.cycleYielded.inc(yielded / 1000);
        if (this.stopping) break;
      }
      const started = Date.now();
      try {
        await this.cycleOnce();
      } catch (error) {
        this.log.error(
          { event: 'daemon.cycle_failed', err: (error as Error).message },
          'monitor cycle failed',
        );
      }
      const took = Date.now() - started;
      // A fleet in one process shares one event loop: a cycle longer than its interval means the
      // process (or a host) cannot keep up, and the next cycle starts late.
      this.metrics.cycleDuration.observe(took / 1000);
      if (took > interval) this.metrics.cycleOverruns.inc();
      // stop() during the cycle found no wait to cut short: do not start one.
      if (this.stopping) break;
      const scheduled = this.quickRechecks.nextWait(Math.max(0, interval - took));
      const wait = this.cycleRequested ? 0 : scheduled;
      this.cycleRequested = false;
      await this.pause(wait);
    }
  }

  /** Waits `ms`, cut short by cycleSoon() or stop(). */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Ends the loop, the schedules, the heartbeat, the agents' exchanges and leadership; journals the stop. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.options.priority?.end(this.name);
    for (const schedule of this.schedules) schedule.stop();
    this.wake?.();
    await this.loopDone;
    await this.engine
      .flush()
      .catch((error: Error) =>
        this.log.warn(
          { event: 'state.save_failed', err: error.message },
          'could not save the state at shutdown',
        ),
      );
    await this.heartbeat.stop();
    await this.silences?.stop();
    await this.agents.settled();
    await this.routes?.settled();
    // A transfer job in its last step (set-online after a rejoin) journals when it ends; a copy
    // still streaming is not waited for (it fails with the daemon, as before).
    await Promise.race([
      Promise.allSettled(this.settleBeforeStop.map((settle) => settle())),
      new Promise((resolve) => setTimeout(resolve, STOP_SETTLE_MS).unref()),
    ]);
    await this.monitor.close();
    if (this.ha) {
      await this.ha.leadership.stop();
      this.ha.client.close();
    }
  }

  /** The last word in the journal, once the listener is closed too. */
  journalStopped(): void {
    try {
      this.journal.append({ phase: 'note', event: 'daemon.stopped', reason: 'shutdown requested' });
    } catch (error) {
      this.log.warn(
        { event: 'journal.write_failed', err: (error as Error).message },
        'could not journal the shutdown',
      );
    }
  }
}

/** ha.advertise_url, else http(s)://LISTEN (https with `tls`), this machine's name for a wildcard listen address. */
export function advertisedUrl(config: LoadedConfig): string {
  if (config.ha?.advertise_url) return config.ha.advertise_url.replace(/\/$/, '');
  const index = config.listen.lastIndexOf(':');
  const host = config.listen.slice(0, index);
  const port = config.listen.slice(index + 1);
  return `${config.tls ? 'https' : 'http'}://${host === '0.0.0.0' || host === '' || host === '[::]' ? hostname() : host}:${port}`;
}
