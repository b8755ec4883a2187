/**
 * Fakes for the engine's unit tests: a simulated cluster (read_only per host, VIPs, GTID
 * positions, replication links) behind a fake Actuator that records every call, fails on
 * demand, and checks after every call that at most one host is writable.
 */
import type { EngineOptions } from '../../src/engine/core.js';
import {
  ActionError,
  type Actuator,
  type FenceResult,
  type PlannedStep,
  type VipCallBound,
} from '../../src/actuator/types.js';
import { configSchema } from '../../src/config/schema.js';
import type {
  ClusterState,
  ClusterStateStore,
  HostRecord,
} from '../../src/domain/cluster-state.js';
import type { HostState } from '../../src/domain/host-state.js';
import type { HostObservation } from '../../src/domain/observation.js';
import { MemoryJournal } from '../../src/journal/journal.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { Engine } from '../../src/engine/engine.js';
import type { EngineConfig } from '../../src/engine/context.js';
import { mariadbGtid } from '../../src/mysql/gtid.js';

export function testConfig(overrides: Record<string, unknown> = {}): EngineConfig {
  return configSchema.parse({
    cluster: 'test',
    mysql: {
      user: 'switchyard',
      password_file: '/nonexistent/pass',
      replication_user: 'repl',
      replication_password_file: '/nonexistent/repl',
    },
    hosts: {
      db1: { address: '127.0.0.1', port: 3307, peer: 'db2' },
      db2: { address: '127.0.0.1', port: 3308, peer: 'db1' },
      db3: { address: '127.0.0.1', port: 3309, replica_of: 'writer' },
    },
    roles: {
      writer: { exclusive: true, hosts: ['db1', 'db2'], ips: ['127.0.1.100'], prefer: 'db1' },
      reader: { hosts: ['db1', 'db2', 'db3'], ips: ['127.0.1.101', '127.0.1.102', '127.0.1.103'] },
    },
    monitor: { failures_before_down: 3, max_lag: '10s' },
    auth: { token_file: '/nonexistent/token' },
    actuator: { catchup_timeout: '2s' },
    rules: [
      { alert: 'SwitchyardReplicationLagHigh', action: 'drop_roles', roles: ['reader'] },
      { alert: 'SwitchyardReplicationBroken', action: 'drop_roles', roles: ['reader'] },
      { alert: 'SwitchyardWriterDown', action: 'move_role', role: 'writer' },
    ],
    ...overrides,
  });
}

export interface SimHost {
  reachable: boolean;
  /** false: mariadbd is dead (not writable whatever read_only said); reachable=false alone is a broken path. */
  alive: boolean;
  readOnly: boolean;
  /** gtid_current_pos (applied). */
  applied: string;
  /** Replication source host name, if any. */
  master?: string;
  /** Gtid_IO_Pos (received). */
  received?: string;
  ioRunning: boolean;
  sqlRunning: boolean;
  lastIoError: string;
  lag: number | null;
  vips: Set<string>;
  /** The agent answers even when MySQL does not (false: VIP calls fail too). */
  agentUp: boolean;
  /** What the manager's check gets when unreachable: refused (mysqld dead, host up) or a timeout (silent). */
  failure?: 'refused' | 'silent';
  /** @@gtid_binlog_state (per domain and server_id); absent: the engine falls back to positions. */
  binlogState?: string;
}

export class SimCluster {
  readonly hosts = new Map<string, SimHost>();
  readonly calls: string[] = [];
  readonly violations: string[] = [];
  /** "method:host" or "method:host:arg" keys that throw. */
  readonly failOn = new Set<string>();
  /** Keys that take effect and then throw (a timeout on the answer to a statement that ran). */
  readonly failAfter = new Set<string>();
  /** "method:host" keys whose call is recorded and then never returns (a statement stuck on the server). */
  readonly hangOn = new Set<string>();
  /** The bound each VIP call was made with, by "method:host:ip" key, in call order. */
  readonly vipBounds: Array<{ key: string; bound: VipCallBound | undefined }> = [];
  /** waitForGtid answers this (default: applied catches up to received, true). */
  waitAnswer: (host: string, position: string) => boolean = () => true;

  constructor(readonly config: EngineConfig) {
    for (const name of Object.keys(config.hosts)) {
      this.hosts.set(name, {
        reachable: true,
        alive: true,
        readOnly: true,
        applied: '0-1-100',
        ioRunning: true,
        sqlRunning: true,
        lastIoError: '',
        lag: 0,
        vips: new Set(),
        agentUp: true,
      });
    }
  }

  host(name: string): SimHost {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no sim host ${name}`);
    return host;
  }

  /** Standard layout: db1 writer with the writer VIP, db2 <-> db1, db3 replica of db1. */
  static standard(config = testConfig()): SimCluster {
    const sim = new SimCluster(config);
    sim.host('db1').readOnly = false;
    sim.host('db1').master = 'db2';
    sim.host('db1').received = '0-1-100';
    sim.host('db2').master = 'db1';
    sim.host('db2').received = '0-1-100';
    sim.host('db3').master = 'db1';
    sim.host('db3').received = '0-1-100';
    sim.host('db1').vips.add('127.0.1.100');
    sim.host('db1').vips.add('127.0.1.101');
    sim.host('db2').vips.add('127.0.1.102');
    sim.host('db3').vips.add('127.0.1.103');
    return sim;
  }

  writable(): string[] {
    return [...this.hosts].filter(([, host]) => !host.readOnly && host.alive).map(([name]) => name);
  }

  observe(at = Date.now()): HostObservation[] {
    return [...this.hosts].map(([name, host]) => {
      if (!host.reachable)
        return {
          host: name,
          at,
          reachable: false,
          error: host.failure === 'silent' ? 'connect ETIMEDOUT' : 'connect ECONNREFUSED',
          ...(host.failure === 'silent' ? {} : { refusal: 'refused' as const }),
          checks: {},
        };
      const hostConfig = this.config.hosts[host.master ?? ''];
      return {
        host: name,
        at,
        reachable: true,
        readOnly: host.readOnly,
        uptimeSeconds: 1000,
        serverId: Number(name.replace(/\D/g, '')),
        gtid: {
          binlogPos: host.applied,
          slavePos: host.applied,
          currentPos: host.applied,
          binlogState: host.binlogState,
        },
        replication: host.master
          ? {
              masterHost: hostConfig?.address ?? host.master,
              masterPort: hostConfig?.port ?? 3306,
              ioRunning: host.ioRunning,
              sqlRunning: host.sqlRunning,
              ioState: host.ioRunning ? 'Waiting for master to send event' : '',
              lastIoError: host.lastIoError,
              lastSqlError: '',
              secondsBehindMaster: host.lag === null ? null : Math.floor(host.lag),
              gtidIoPos: host.received ?? host.applied,
              relayBacklog: (host.received ?? host.applied) !== host.applied,
            }
          : undefined,
        heartbeatLagSeconds: host.lag,
        checks: {},
      } satisfies HostObservation;
    });
  }

  /** The writer died: unreachable, its replicas' IO threads lost it. */
  killHost(name: string): void {
    const host = this.host(name);
    host.reachable = false;
    host.alive = false;
    host.agentUp = false;
    for (const other of this.hosts.values()) {
      if (other.master === name) {
        other.ioRunning = false;
        other.lastIoError = `error reconnecting to master '${name}'`;
      }
    }
  }

  check(): void {
    const writable = this.writable();
    if (writable.length > 1)
      this.violations.push(`after ${this.calls.at(-1)}: writable ${writable.join(',')}`);
  }
}

export class FakeActuator implements Actuator {
  readonly steps: PlannedStep[] = [];
  constructor(
    readonly sim: SimCluster,
    readonly dryRun = false,
  ) {}

  private call(key: string, description: string, host: string, run: () => void): void {
    if (this.dryRun) {
      this.steps.push({ action: key.split(':')[0] as string, host, description });
      return;
    }
    this.sim.calls.push(key);
    if (this.sim.failOn.has(key) || this.sim.failOn.has(key.split(':').slice(0, 2).join(':')))
      throw new ActionError(`injected failure: ${key}`);
    run();
    this.steps.push({ action: key.split(':')[0] as string, host, description });
    this.sim.check();
    if (this.sim.failAfter.has(key)) throw new ActionError(`injected failure after effect: ${key}`);
  }

  private async hangIf(key: string): Promise<void> {
    if (this.dryRun || !this.sim.hangOn.has(key)) return;
    this.sim.calls.push(`${key}:hung`);
    await new Promise<never>(() => undefined);
  }

  private mysql(host: string): SimHost {
    const sim = this.sim.host(host);
    if (!sim.reachable) throw new ActionError(`${host}: connect ECONNREFUSED`);
    return sim;
  }

  async setReadOnly(host: string, on: boolean): Promise<void> {
    this.call(
      `setReadOnly:${host}:${on}`,
      `SET GLOBAL read_only=${on ? 'ON' : 'OFF'}`,
      host,
      () => {
        this.mysql(host).readOnly = on;
      },
    );
  }
  async fence(host: string): Promise<FenceResult> {
    this.call(`fence:${host}`, 'SET GLOBAL read_only=ON; KILL client connections', host, () => {
      this.mysql(host).readOnly = true;
    });
    return { readOnly: true, killedConnections: 2 };
  }
  async waitForGtid(host: string, position: string, _timeoutMs: number): Promise<boolean> {
    let answer = true;
    this.call(
      `waitForGtid:${host}:${position}`,
      `SELECT MASTER_GTID_WAIT('${position}')`,
      host,
      () => {
        const sim = this.mysql(host);
        answer = this.sim.waitAnswer(host, position);
        if (answer) sim.applied = mariadbGtid.merge(sim.applied, position);
      },
    );
    return this.dryRun ? true : answer;
  }
  async repoint(replica: string, newMaster: string): Promise<void> {
    this.call(
      `repoint:${replica}:${newMaster}`,
      `CHANGE MASTER TO MASTER_HOST='${newMaster}', MASTER_USE_GTID=slave_pos`,
      replica,
      () => {
        const sim = this.mysql(replica);
        sim.master = newMaster;
        sim.ioRunning = true;
        sim.lastIoError = '';
      },
    );
  }
  async stopReplication(host: string): Promise<void> {
    this.call(`stopReplication:${host}`, 'STOP SLAVE', host, () => {
      const sim = this.mysql(host);
      sim.ioRunning = false;
      sim.sqlRunning = false;
    });
  }
  async stopIoThread(host: string): Promise<void> {
    this.call(`stopIoThread:${host}`, 'STOP SLAVE IO_THREAD', host, () => {
      this.mysql(host).ioRunning = false;
    });
  }
  async startIoThread(host: string): Promise<void> {
    await this.hangIf(`startIoThread:${host}`);
    this.call(`startIoThread:${host}`, 'START SLAVE IO_THREAD', host, () => {
      const sim = this.mysql(host);
      sim.ioRunning = true;
      sim.lastIoError = '';
    });
  }
  resumeReplication(host: string): Promise<void> {
    return this.startSlave('resumeReplication', host);
  }
  startReplication(host: string): Promise<void> {
    return this.startSlave('startReplication', host);
  }
  private async startSlave(method: string, host: string): Promise<void> {
    await this.hangIf(`${method}:${host}`);
    this.call(`${method}:${host}`, 'START SLAVE', host, () => {
      const sim = this.mysql(host);
      sim.ioRunning = true;
      sim.sqlRunning = true;
      sim.lastIoError = '';
    });
  }
  async addVip(host: string, ip: string, bound?: VipCallBound): Promise<void> {
    if (!this.dryRun) this.sim.vipBounds.push({ key: `addVip:${host}:${ip}`, bound });
    this.call(`addVip:${host}:${ip}`, `ip addr add ${ip}/24 dev eth0`, host, () => {
      if (!this.sim.host(host).agentUp) throw new ActionError(`${host}: agent unreachable`);
      this.sim.host(host).vips.add(ip);
    });
  }
  async removeVip(host: string, ip: string, bound?: VipCallBound): Promise<void> {
    if (!this.dryRun) this.sim.vipBounds.push({ key: `removeVip:${host}:${ip}`, bound });
    this.call(`removeVip:${host}:${ip}`, `ip addr del ${ip}/24 dev eth0`, host, () => {
      if (!this.sim.host(host).agentUp) throw new ActionError(`${host}: agent unreachable`);
      this.sim.host(host).vips.delete(ip);
    });
  }
  async listVips(host: string): Promise<string[]> {
    if (!this.sim.host(host).agentUp) throw new ActionError(`${host}: agent unreachable`);
    return [...this.sim.host(host).vips];
  }
}

export class MemoryStore implements ClusterStateStore {
  saved: ClusterState | undefined;
  saves = 0;
  async load(): Promise<ClusterState | undefined> {
    return this.saved ? structuredClone(this.saved) : undefined;
  }
  async save(state: ClusterState): Promise<void> {
    this.saves += 1;
    this.saved = structuredClone(state);
  }
  describe(): string {
    return 'memory';
  }
}

export function record(state: HostState, extra: Partial<HostRecord> = {}): HostRecord {
  return {
    state,
    reason: 'test',
    since: 1,
    failures: state === 'HARD_OFFLINE' ? 3 : 0,
    flaps: [],
    ...extra,
  };
}

/** A ClusterState as the monitor would pass it, with the standard roles. */
export function clusterState(
  hosts: Record<string, HostState>,
  roles?: ClusterState['roles'],
): ClusterState {
  return {
    version: 1,
    cluster: 'test',
    mode: 'active',
    hosts: Object.fromEntries(Object.entries(hosts).map(([name, state]) => [name, record(state)])),
    roles: roles ?? {
      writer: { '127.0.1.100': 'db1' },
      reader: { '127.0.1.101': 'db1', '127.0.1.102': 'db2', '127.0.1.103': 'db3' },
    },
    updatedAt: 1,
  };
}

export interface Harness {
  sim: SimCluster;
  engine: Engine;
  journal: MemoryJournal;
  store: MemoryStore;
  metrics: SwitchyardMetrics;
  live: FakeActuator;
  planner: FakeActuator;
  leader: { value: boolean };
  /** One monitor cycle: observations from the sim, host states as given (merged into the engine's). */
  cycle(hosts?: Record<string, HostState>): Promise<ClusterState>;
  events(): string[];
}

export function harness(
  options: {
    config?: EngineConfig;
    sim?: SimCluster;
    state?: ClusterState;
    positions?: Record<string, string>;
    now?: () => number;
    routes?: EngineOptions['routes'];
    /** The hosts' agents (default none: every agent question has the no-agent answer). */
    agents?: EngineOptions['agents'];
    /** Where the state is saved (default: a MemoryStore that saves at once). */
    store?: MemoryStore;
  } = {},
): Harness {
  const config = options.config ?? testConfig();
  const sim = options.sim ?? SimCluster.standard(config);
  const journal = new MemoryJournal();
  const store = options.store ?? new MemoryStore();
  const metrics = new SwitchyardMetrics('test', { processMetrics: false });
  const live = new FakeActuator(sim);
  const planner = new FakeActuator(sim, true);
  const leader = { value: true };
  const initial = options.state ?? clusterState({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  const engine = new Engine(
    {
      config,
      store,
      actuators: { live, planner },
      positions: {
        currentGtidPosition: async (host) => options.positions?.[host] ?? sim.host(host).applied,
        gtidView: async (host) => {
          const item = sim.host(host);
          if (!item.reachable) throw new Error(`${host}: connect ECONNREFUSED`);
          return {
            binlogState: item.binlogState,
            known: mariadbGtid.merge(item.applied, item.received ?? ''),
            serverId: Number(host.replace(/\D/g, '')),
          };
        },
      },
      journal,
      leadership: {
        mayAct: () => leader.value,
        describe: () => (leader.value ? 'leader' : 'follower'),
      },
      metrics,
      now: options.now,
      routes: options.routes,
      agents: options.agents,
    },
    initial,
  );
  let tick = 10;
  const hostStates: Record<string, HostState> = Object.fromEntries(
    Object.entries(initial.hosts).map(([name, item]) => [name, item.state]),
  );
  return {
    sim,
    engine,
    journal,
    store,
    metrics,
    live,
    planner,
    leader,
    async cycle(hosts) {
      tick += 1;
      const current = engine.snapshot();
      const incoming: ClusterState = { ...current, hosts: { ...current.hosts } };
      for (const [name, state] of Object.entries(hosts ?? {})) {
        if (hostStates[name] !== state) {
          hostStates[name] = state;
          incoming.hosts[name] = record(state, { since: Date.now() + tick });
        }
      }
      return engine.onCycle(sim.observe(), incoming);
    },
    events() {
      return journal.entries.map(
        (entry) =>
          `${entry.phase}:${entry.event}${entry.host ? `:${entry.host}` : ''}${entry.outcome ? `:${entry.outcome}` : ''}`,
      );
    },
  };
}
