import { execFile } from 'node:child_process';
import type { LoadedConfig } from '../config/load.js';
import { readSecret } from '../config/secrets.js';
import type { ClusterState, HostRecord } from '../domain/cluster-state.js';
import type { HostState } from '../domain/host-state.js';
import type { MonitorCycle } from '../domain/monitor-cycle.js';
import type { HostObservation, ReplicationStatus } from '../domain/observation.js';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Logger } from '../log.js';
import { openConnection } from '../mysql/connect.js';
import { observeHost } from './checks.js';
import { CheckConnections } from './check-connections.js';
import { gtidStrictModeWarning } from './gtid-strict-mode.js';
import { slowReplicaTimeoutWarning } from './replica-timeout.js';
import { WriterWatch } from './writer-watch.js';
import { processGoneAt } from './restart.js';
import { initialHostRecord, nextHostRecord } from './state-machine.js';

export type { MonitorCycle };

/** What one round of checks found, before it is applied to any host record. */
export interface Observed {
  /** Epoch ms at the start of the checks. */
  at: number;
  observations: HostObservation[];
  /** The manager's own network check (monitor.ping_ips). */
  network: { ok: boolean; detail: string };
}

export interface MonitorOptions {
  config: LoadedConfig;
  log: Logger;
  metrics?: SwitchyardMetrics;
  /** The manager's own network check; default: one ICMP echo with a 1 s wait. */
  pinger?: (ip: string) => Promise<boolean>;
  now?: () => number;
  /** The idle connection to the writer was lost (see WriterWatch): the daemon runs a cycle now. */
  onWriterLost?: (host: string, reason: string) => void;
  /** The idle connection to the writer stopped answering pings (hung or silent): a cycle now. */
  onWriterStalled?: (host: string, reason: string) => void;
}

/** How often the writer watch pings, and how long a ping may wait before it counts as a stall. */
export function writerPingTiming(intervalMs: number): { everyMs: number; stallMs: number } {
  const step = Math.max(100, Math.round(intervalMs / 5));
  return { everyMs: step, stallMs: step };
}

const HEALTHY: ReadonlySet<HostState> = new Set([
  'ONLINE',
  'REPLICATION_DELAY',
  'REPLICATION_FAIL',
]);

/** The configured host a replica's master address and port name, if any. */
export function masterOf(
  replication: ReplicationStatus,
  hosts: LoadedConfig['hosts'],
): string | undefined {
  for (const [name, host] of Object.entries(hosts)) {
    const sameHost = replication.masterHost === name || replication.masterHost === host.address;
    if (sameHost && (replication.masterPort === host.port || replication.masterPort === 0))
      return name;
  }
  return undefined;
}

function icmpPing(ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('ping', ['-c', '1', '-W', '1', ip], { timeout: 3000 }, (error) => resolve(!error));
  });
}

/**
 * The record changed (an operator command, a failover, a rejoin) after these checks began: what
 * they saw predates it, so no transition is computed from it this cycle. A `since` ahead of this
 * manager's clock is another manager's clock, not a change during the checks.
 */
function changedDuring(record: HostRecord, checksBegan: number, now: number): boolean {
  return record.since > checksBegan && record.since <= now;
}

/** Of an observation that predates the record, only a refused connect is kept: the safe side. */
function withGoneEvidence(record: HostRecord, observation: HostObservation): HostRecord {
  if (observation.reachable || record.processGoneAt !== undefined) return record;
  const goneAt = processGoneAt(record, observation);
  return goneAt === undefined ? record : { ...record, processGoneAt: goneAt };
}

/**
 * The eyes: checks every host concurrently, then applies the state machine. It never saves and
 * never acts; the daemon hands the cycle to the engine, which does both.
 */
export class Monitor {
  private readonly user: string;
  private readonly password: string;
  private readonly pinger: (ip: string) => Promise<boolean>;
  private readonly now: () => number;
  /** gtid_strict_mode last seen per host: warned once per host and value. */
  private readonly strictModeSeen = new Map<string, boolean>();
  /** Hosts already warned about a slow slave_net_timeout (once per host and value). */
  private readonly timeoutWarned = new Map<string, number>();
  /** Last server_id seen per host, so heartbeat lag can be measured while the writer is briefly unreachable. */
  private readonly serverIds = new Map<string, number>();
  private readonly writerWatch: WriterWatch;
  /** One connection per host, kept between checks (see CheckConnections). */
  private readonly checkConnections = new CheckConnections();

  constructor(private readonly options: MonitorOptions) {
    const { mysql } = options.config;
    this.user = mysql.user;
    this.password = readSecret(
      { file: mysql.password_file, env: mysql.password_env },
      'mysql.password',
    );
    this.pinger = options.pinger ?? icmpPing;
    this.now = options.now ?? Date.now;
    this.writerWatch = new WriterWatch({
      open: (name) => {
        const host = options.config.hosts[name];
        if (!host) return Promise.reject(new Error(`${name} is not a configured host`));
        return openConnection({
          host: host.address,
          port: host.port,
          user: this.user,
          password: this.password,
          connectTimeoutMs: options.config.monitor.connect_timeout,
        });
      },
      onLost: (host, reason) => {
        options.log.info(
          { event: 'monitor.writer_connection_lost', host, reason },
          'the connection to the writer was lost: checking now',
        );
        options.onWriterLost?.(host, reason);
      },
      ping: {
        ...writerPingTiming(options.config.monitor.interval),
        onStalled: (host, reason) => {
          options.log.info(
            { event: 'monitor.writer_stalled', host, reason },
            'the writer stopped answering on its idle connection: checking now',
          );
          options.onWriterStalled?.(host, reason);
        },
      },
    });
  }

  /** Keeps an idle connection to the state's writer, so that its crash is heard at once. */
  watchWriter(state: ClusterState): void {
    this.writerWatch.watch(this.writerOf(state));
  }

  private writerOf(state: ClusterState, observations?: HostObservation[]): string | undefined {
    const ips = state.roles.writer ?? {};
    const holder = Object.values(ips).find((host): host is string => typeof host === 'string');
    if (holder) return holder;
    const writable = observations?.filter((obs) => obs.reachable && obs.readOnly === false) ?? [];
    return writable.length === 1 ? writable[0]?.host : undefined;
  }

  private async networkCheck(): Promise<{ ok: boolean; detail: string }> {
    const ips = this.options.config.monitor.ping_ips;
    if (ips.length === 0) return { ok: true, detail: 'no ping_ips configured' };
    const answers = await Promise.all(ips.map(async (ip) => [ip, await this.pinger(ip)] as const));
    const answered = answers.filter(([, ok]) => ok).map(([ip]) => ip);
    return answered.length > 0
      ? { ok: true, detail: `answered: ${answered.join(', ')}` }
      : {
          ok: false,
          detail: `none of ping_ips answered (${ips.join(', ')}): the manager's own network is in doubt`,
        };
  }

  /** One cycle on its own: observe, then advance `state` (tests; the daemon splits the two). */
  async runCycle(state: ClusterState): Promise<MonitorCycle> {
    return this.advance(state, await this.observe(state));
  }

  /**
   * Checks every host (and the manager's own network). `state` only names the writer, whose
   * server_id the replicas' heartbeat lag is read against.
   */
  async observe(state: ClusterState): Promise<Observed> {
    const { config } = this.options;
    const at = this.now();
    const writer = this.writerOf(state);
    const writerServerId = writer ? this.serverIds.get(writer) : undefined;
    const [network, observations] = await Promise.all([
      this.networkCheck(),
      Promise.all(
        Object.entries(config.hosts).map(([name, host]) =>
          observeHost(
            {
              name,
              host,
              user: this.user,
              password: this.password,
              connectTimeoutMs: config.monitor.connect_timeout,
              checkTimeoutMs:
                config.monitor.check_timeout ?? Math.max(config.monitor.connect_timeout * 2, 1000),
              heartbeat: { schema: config.heartbeat.schema, writerServerId },
            },
            at,
            this.checkConnections,
          ),
        ),
      ),
    ]);
    for (const observation of observations) {
      this.warnSlowTimeout(observation);
      this.warnStrictModeOff(observation);
      if (observation.serverId !== undefined && !Number.isNaN(observation.serverId))
        this.serverIds.set(observation.host, observation.serverId);
      for (const [check, outcome] of Object.entries(observation.checks))
        this.options.metrics?.checkDuration.observe({ check }, outcome.durationMs / 1000);
    }
    return { at, observations, network };
  }

  /**
   * The host records after `observed`, from `state`'s. The daemon calls it under the engine's
   * lock with the engine's current state, not with the copy the checks started from: an operator
   * command or a failover that changed a record while the checks ran is built on, not overwritten
   * by a transition computed from the older record. A record changed after the checks began is
   * not moved by them at all (changedDuring).
   */
  advance(state: ClusterState, observed: Observed): MonitorCycle {
    const { config, log } = this.options;
    const { at, observations, network } = observed;
    const next: ClusterState = { ...state, hosts: { ...state.hosts } };
    const transitions: MonitorCycle['transitions'] = [];
    if (!network.ok) {
      log.warn(
        { event: 'monitor.network_down', detail: network.detail },
        'network self-check failed: host states frozen',
      );
      return {
        at,
        observations,
        state: next,
        networkOk: false,
        networkDetail: network.detail,
        transitions,
      };
    }
    const activeWriter = this.writerOf(state, observations);
    const byHost = new Map(observations.map((observation) => [observation.host, observation]));
    const now = this.now();
    for (const observation of observations) {
      const record = next.hosts[observation.host] ?? initialHostRecord(at);
      if (changedDuring(record, at, now)) {
        next.hosts[observation.host] = withGoneEvidence(record, observation);
        continue;
      }
      const masterName = observation.replication
        ? masterOf(observation.replication, config.hosts)
        : undefined;
      const masterState = masterName ? state.hosts[masterName]?.state : undefined;
      const { record: updated, transition } = nextHostRecord(record, observation, {
        isActiveWriter: observation.host === activeWriter,
        master: masterName
          ? {
              name: masterName,
              online:
                byHost.get(masterName)?.reachable === true &&
                masterState !== undefined &&
                HEALTHY.has(masterState),
            }
          : undefined,
        monitor: config.monitor,
        now,
      });
      next.hosts[observation.host] = updated;
      if (transition) {
        transitions.push({ host: observation.host, ...transition });
        log.info(
          {
            event: 'host.state_changed',
            host: observation.host,
            from: transition.from,
            to: transition.to,
            reason: transition.reason,
          },
          `${observation.host}: ${transition.from} -> ${transition.to}`,
        );
      }
    }
    return {
      at,
      observations,
      state: next,
      networkOk: true,
      networkDetail: network.detail,
      transitions,
    };
  }

  /** Says once per host and value when gtid_strict_mode is OFF (errant handling relies on ON). */
  private warnStrictModeOff(observation: HostObservation): void {
    const strict = observation.gtidStrictMode;
    if (strict === undefined || this.strictModeSeen.get(observation.host) === strict) return;
    this.strictModeSeen.set(observation.host, strict);
    const warning = gtidStrictModeWarning(observation);
    if (warning)
      this.options.log.warn(
        { event: 'monitor.gtid_strict_mode_off', host: observation.host },
        warning,
      );
  }

  /** Says once per host and value when a replica's slave_net_timeout slows writer-loss evidence. */
  private warnSlowTimeout(observation: HostObservation): void {
    const warning = slowReplicaTimeoutWarning(observation, this.options.config.hosts);
    const timeout = observation.slaveNetTimeoutSeconds;
    if (!warning || timeout === undefined || this.timeoutWarned.get(observation.host) === timeout)
      return;
    this.timeoutWarned.set(observation.host, timeout);
    this.options.log.warn(
      {
        event: 'monitor.slow_replica_timeout',
        host: observation.host,
        slaveNetTimeoutSeconds: timeout,
      },
      warning,
    );
  }

  async close(): Promise<void> {
    this.checkConnections.close();
    await this.writerWatch.close();
  }
}
