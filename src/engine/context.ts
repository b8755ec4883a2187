import type { LeaseGateResult } from './lease-gate.js';
import type { Config } from '../config/schema.js';
import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import type { GtidOps } from '../mysql/gtid.js';
import type { Hooks } from '../hooks/hooks.js';
import type { StepRunner } from './steps.js';

/** The parts of the configuration the engine decides with. */
export type EngineConfig = Pick<
  Config,
  | 'cluster'
  | 'hosts'
  | 'roles'
  | 'monitor'
  | 'actuator'
  | 'triggers'
  | 'rules'
  | 'mode'
  | 'failover'
  | 'lease'
  | 'hooks'
>;

/**
 * Reads a host's GTID positions live (src/mysql/positions.ts: `@@gtid_binlog_pos` merged with
 * `@@gtid_slave_pos` for currentGtidPosition). A switchover needs the old writer's final position
 * after the fence, which no monitor observation can give.
 */
export interface PositionReader {
  currentGtidPosition(host: string): Promise<string>;
  /** The host's binlog state, known position and server_id, read live (errant checks). */
  gtidView(host: string): Promise<GtidView>;
}

/** What errant detection needs of one host: read from one observation or one live query. */
export interface GtidView {
  /** @@gtid_binlog_state: last GTID per domain and server_id ("" when unknown). */
  binlogState?: string;
  /** Everything the host has received or applied, one GTID per domain. */
  known: string;
  serverId?: number;
}

/** What the procedures (failover, switchover, recovery) work with. */
export interface OpContext {
  config: EngineConfig;
  writerRole: string;
  /** The engine's state; procedures change roles and `operation` in place, then persist. */
  state: ClusterState;
  observations: ReadonlyMap<string, HostObservation>;
  runner: StepRunner;
  gtid: GtidOps;
  positions: PositionReader;
  journal: Journal;
  log: Logger;
  metrics?: SwitchyardMetrics;
  /** Saves `state`; does nothing when the runner only plans. */
  persist(): Promise<void>;
  /** Roles that alerts or the operator took from hosts. */
  dropped: ReadonlyMap<string, ReadonlySet<string>>;
  /** A role VIP could not be added to its new holder: the engine retries it every cycle. */
  vipNotAdded(role: string, ip: string, host: string): void;
  /**
   * Invariant 7: resolves once the old writer's lease has certainly lapsed (its agent released it,
   * or the lease ran out since anyone last reached that agent); ok false when it cannot be known.
   */
  leaseLapsed(oldWriter: string): Promise<LeaseGateResult>;
  /**
   * Grants `host`'s agent the writer lease and waits for it to confirm, before `host` becomes
   * writable: a writer that holds no lease would not fence itself if it were cut off.
   */
  grantLease(host: string): Promise<{ ok: boolean; detail: string }>;
  /** False while the host's agent fails the exchange: a VIP removal there would only wait for timeouts. */
  agentAnswering(host: string): boolean;
  /** The configured hooks; absent while only planning (passive mode, analysis, dry runs). */
  hooks?: Hooks;
  /**
   * Routers the manager drives (HAProxy's runtime API): pushes the roles as they are now, after
   * the fence and the promotion. Bounded and never throws: an unreachable router never holds a
   * failover. Absent while only planning and when no routing is configured.
   */
  routes?: { follow(reason: string): Promise<void> };
  now(): number;
}
