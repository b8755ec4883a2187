import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HOST_STATES } from '../domain/host-state.js';
import { MODES } from '../config/schema.js';
import { switchyardVersion } from '../version.js';
import { EXPOSITION_CONTENT_TYPE, renderExposition } from './exposition.js';

/** prom-client defaults dropped because they break the naming rules; see the constructor. */
export const OFF_CONVENTION_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

/**
 * Every Switchyard metric, in one registry with `cluster` on every series. Names are the outside
 * contract of docs/design.md: dashboards and alert rules depend on them.
 */
export class SwitchyardMetrics {
  readonly registry = new Registry();

  readonly hostUp = this.gauge(
    'switchyard_host_up',
    "1 if the manager's last check could connect and query",
    ['host'],
  );
  readonly hostState = this.gauge(
    'switchyard_host_state',
    "1 for the host's current state, 0 for the others",
    ['host', 'state'],
  );
  readonly readOnly = this.gauge('switchyard_mysql_read_only', 'value of read_only (1 = ON)', [
    'host',
  ]);
  readonly gtidStrictMode = this.gauge(
    'switchyard_gtid_strict_mode',
    'value of gtid_strict_mode (1 = ON); errant-transaction handling relies on ON, MariaDB defaults to OFF',
    ['host'],
  );
  readonly uptime = this.gauge('switchyard_mysql_uptime_seconds', 'server uptime', ['host']);
  readonly ioRunning = this.gauge(
    'switchyard_replication_io_running',
    '1 if the replication IO thread runs',
    ['host'],
  );
  readonly sqlRunning = this.gauge(
    'switchyard_replication_sql_running',
    '1 if the replication SQL thread runs',
    ['host'],
  );
  readonly lag = this.gauge(
    'switchyard_replication_lag_seconds',
    'replication lag measured with the heartbeat table, sub-second',
    ['host'],
  );
  readonly secondsBehindMaster = this.gauge(
    'switchyard_replication_seconds_behind_master',
    'Seconds_Behind_Master as the server reports it',
    ['host'],
  );
  readonly roleIpAssigned = this.gauge(
    'switchyard_role_ip_assigned',
    '1 where the roles put the IP (desired; switchyard_vip_held is what the agents report)',
    ['role', 'ip', 'host'],
  );
  readonly roleAssigned = this.gauge(
    'switchyard_role_assigned',
    '1 for every role a host holds, with or without IPs (roles routed by health checks or hooks)',
    ['role', 'host'],
  );
  readonly vipHeld = this.gauge(
    'switchyard_vip_held',
    "1 where the host's agent reports holding the IP (actual)",
    ['ip', 'host'],
  );
  readonly agentUp = this.gauge(
    'switchyard_agent_up',
    "1 if the host's agent answered the last status exchange",
    ['host'],
  );
  readonly agentProtocolMismatch = this.gauge(
    'switchyard_agent_protocol_mismatch',
    "1 while the host's agent speaks an exchange protocol too far from this manager's (its answers are not used: upgrade the side that is behind)",
    ['host'],
  );
  readonly agentBuildInfo = this.gauge(
    'switchyard_agent_build_info',
    '1 for the build and exchange protocol the host\'s agent stated in its last answer (version "unknown" and protocol 1: a build before the protocol field); kept while the agent is silent',
    ['host', 'version', 'protocol'],
  );
  readonly buildInfo = this.gauge(
    'switchyard_build_info',
    "always 1: this manager's build (package version) in the version label",
    ['version'],
  );
  readonly routeState = this.gauge(
    'switchyard_route_state',
    "1 for the state (ready, maint, drain) each HAProxy reports for a host's server in a routed backend",
    ['proxy', 'backend', 'host', 'state'],
  );
  readonly routeMismatch = this.gauge(
    'switchyard_route_mismatch',
    "servers whose state, read back from the HAProxy after the cycle's push, differs from the roles (-1: not read)",
    ['proxy'],
  );
  readonly routeProxyUp = this.gauge(
    'switchyard_route_proxy_up',
    "1 if the HAProxy's runtime API answered the manager's last round",
    ['proxy'],
  );
  readonly routePushesTotal = this.counter(
    'switchyard_route_pushes_total',
    'server state changes pushed to an HAProxy, by result (ok, failed)',
    ['proxy', 'result'],
  );
  readonly fenceReady = this.gauge(
    'switchyard_fence_ready',
    "1 if the host's agent can fence its server (local login and the privileges read_only and KILL need, checked every 30 s)",
    ['host'],
  );
  readonly fencesTotal = this.counter(
    'switchyard_fences_total',
    'fences of a host and how each ended: read_only (read back), stopped (server killed), not_running, unproved; by: release (asked by the manager), agent (its lease lapsed), manager (switchover)',
    ['host', 'how', 'by'],
  );
  readonly writerLease = this.gauge(
    'switchyard_writer_lease_holding',
    "1 while the writer's agent reports holding its lease (reaches a majority of voters)",
    ['host'],
  );
  readonly managerPathBroken = this.gauge(
    'switchyard_manager_path_broken',
    "1 while the manager cannot reach the writer but other hosts still do (the manager's own network path is broken; no failover)",
    [],
  );
  readonly writableHosts = this.gauge(
    'switchyard_writable_hosts',
    'hosts with read_only=OFF (must be 1)',
    [],
  );
  readonly checksumDiffChunks = this.gauge(
    'switchyard_checksum_diff_chunks',
    'chunks that differ from the writer in the last consistency check',
    ['host', 'table'],
  );
  readonly checksumLastRun = this.gauge(
    'switchyard_checksum_last_run_timestamp_seconds',
    'end time of the last completed consistency check',
    [],
  );
  /** Read at scrape time from backupNewestSource, so the age grows between catalogue listings. */
  readonly backupAge: Gauge<'host'>;
  /** Host -> epoch ms of its newest restorable full backup (manager's backup.dir and agents'); set by the daemon. */
  backupNewestSource?: () => ReadonlyMap<string, number>;
  readonly actionsTotal = this.counter('switchyard_actions_total', 'actions taken by Switchyard', [
    'action',
    'result',
  ]);
  readonly failoversTotal = this.counter(
    'switchyard_failovers_total',
    'writer moves and their outcome',
    ['role', 'result'],
  );
  readonly webhookRequestsTotal = this.counter(
    'switchyard_webhook_requests_total',
    'Alertmanager webhook requests by HTTP status',
    ['code'],
  );
  readonly errantTransactions = this.gauge(
    'switchyard_errant_transactions',
    "transactions a host has that the writer lacks (after a failover: the old writer's writes that never reached the new one); the journal names them",
    ['host'],
  );
  readonly situation = this.gauge(
    'switchyard_situation',
    'switchyard why: 1 for each situation the analysis names now (dead_writer, lease_wait, maintenance, ...), 0 for the others',
    ['situation'],
  );
  readonly maintenance = this.gauge(
    'switchyard_maintenance',
    '1 while an Alertmanager silence holds automation off the host',
    ['host'],
  );
  readonly transferBytesTotal = this.counter(
    'switchyard_transfer_bytes_total',
    'compressed bytes of clone/rejoin/restore copies received by target agents (host = the target)',
    ['operation', 'host'],
  );
  readonly autoRejoinsTotal = this.counter(
    'switchyard_auto_rejoins_total',
    'automatic rejoins of hosts held for errant transactions (monitor.auto_rejoin), by result: started, ok, failed, refused',
    ['result'],
  );
  readonly transferInProgress = this.gauge(
    'switchyard_transfer_in_progress',
    'clone/rejoin/restore copies running now',
    [],
  );
  readonly alertingPipelineUp = this.gauge(
    'switchyard_alerting_pipeline_up',
    '1 while webhooks or the watchdog arrive',
    [],
  );
  /** Read at scrape time (see leaderSource), so a cycle that takes long never shows a lead already lost. */
  readonly leader: Gauge;
  /** Several managers: whether this manager may act now; set by the daemon. */
  leaderSource?: () => boolean;
  readonly leaderChangesTotal = this.counter(
    'switchyard_leader_changes_total',
    'changes of the leader this manager saw (several managers, ha)',
    [],
  );
  readonly leaderTerm = this.gauge(
    'switchyard_leader_term',
    'term (fencing token) of the leader as this manager last read it from etcd; 0 when unknown (several managers, ha)',
    [],
  );
  readonly mode = this.gauge('switchyard_mode', '1 for the current mode', ['mode']);
  readonly checkDuration = new Histogram({
    name: 'switchyard_check_duration_seconds',
    help: 'check latency',
    labelNames: ['check'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly cycleDuration = new Histogram({
    name: 'switchyard_monitor_cycle_duration_seconds',
    help: 'how long one monitor cycle took (checks, the engine, metrics); a cycle longer than monitor.interval delays the next',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5],
    registers: [this.registry],
  });
  readonly cycleOverruns = this.counter(
    'switchyard_monitor_cycle_overruns_total',
    'monitor cycles that took longer than monitor.interval (the next one started late)',
    [],
  );
  readonly cycleYielded = this.counter(
    'switchyard_monitor_cycle_yielded_seconds_total',
    "seconds this cluster's monitor cycles waited to start while another cluster of the same process had lost its writer (docs/fleet.md)",
    [],
  );

  constructor(
    readonly cluster: string,
    options: { processMetrics?: boolean } = {},
  ) {
    this.registry.setDefaultLabels({ cluster });
    this.buildInfo.set({ version: switchyardVersion() }, 1);
    const isLeader = () => this.leaderSource?.();
    this.leader = new Gauge({
      name: 'switchyard_leader',
      help: '1 on the manager that acts for the cluster (always 1 for a single manager)',
      registers: [this.registry],
      collect() {
        const leading = isLeader();
        if (leading !== undefined) this.set(leading ? 1 : 0);
      },
    });
    const newestBackups = () => this.backupNewestSource?.();
    this.backupAge = new Gauge({
      name: 'switchyard_backup_age_seconds',
      help: 'age of the newest restorable full backup of the host, wherever kept (manager backup.dir or an agent snapshot.backup_dir); absent for a host without one',
      labelNames: ['host'],
      registers: [this.registry],
      collect() {
        const newest = newestBackups();
        if (newest === undefined) return;
        this.reset();
        const now = Date.now();
        for (const [host, at] of newest) this.set({ host }, Math.max(0, (now - at) / 1000));
      },
    });
    if (options.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // prom-client exports these as gauges with a `_total` suffix, which the exposition rules
      // reserve for counters (`promtool check metrics` rejects them). Each is the sum of a
      // by-type gauge that stays: sum(nodejs_active_handles) and so on.
      for (const name of OFF_CONVENTION_DEFAULTS) this.registry.removeSingleMetric(name);
    }
  }

  private gauge<L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /** One series per state, so `switchyard_host_state{state="ONLINE"} == 1` works in PromQL. */
  setHostState(host: string, state: string): void {
    for (const candidate of HOST_STATES)
      this.hostState.set({ host, state: candidate }, candidate === state ? 1 : 0);
  }

  setMode(current: string): void {
    for (const candidate of MODES)
      this.mode.set({ mode: candidate }, candidate === current ? 1 : 0);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    // The same writer as a fleet's merged /metrics, so one cluster renders as it does in a fleet.
    const body = await renderExposition([this.registry]);
    return { contentType: EXPOSITION_CONTENT_TYPE, body: body.toString() };
  }
}
