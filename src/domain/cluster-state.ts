import type { Mode } from '../config/schema.js';
import type { HostState } from './host-state.js';

export interface HostRecord {
  state: HostState;
  /** Why the host is in this state, for `show`, the journal and the API. */
  reason: string;
  /** Epoch ms of the last state change. */
  since: number;
  /** Last uptime seen; a smaller value later means the server restarted. */
  lastUptimeSeconds?: number;
  /** The monitor's last connection id on the host: smaller later means the server restarted. */
  lastConnectionId?: number;
  /**
   * The server started no later than this (epoch ms on the server's own clock): the smallest
   * "server time minus uptime" seen while it ran. A start later than this shows a restart that
   * uptime and connection ids miss (src/monitor/restart.ts).
   */
  bootedBy?: number;
  /**
   * Epoch ms of the first check, since the host last answered, whose connect was refused or reset
   * by the host itself (nothing listened: the server process was gone), or of a failover's proof
   * from the old writer's agent that no server process runs. A server that answers again with an
   * uptime not older than that restarted.
   */
  processGoneAt?: number;
  /** Consecutive failed pings. */
  failures: number;
  /** Epoch ms of recent ONLINE -> not-ONLINE transitions, for flap detection. */
  flaps: number[];
  /** Set when a host is held for the operator (flapped, restarted, errant transactions); only set-online clears it. */
  held?: string;
  /** The errant transactions (signature "range,range") the operator accepted with set-online --accept-errant: they hold it no more. */
  acceptedErrant?: string;
  /** Epoch ms when it went HARD_OFFLINE, to tell a short outage from a long one. */
  downSince?: number;
  /** Length of the last HARD_OFFLINE outage, for auto_set_online. */
  lastOutageMs?: number;
  /** Never seen healthy yet (first start): no outage to recover from. */
  fresh?: boolean;
}

/** Everything that must survive a daemon restart. Kept behind ClusterStateStore. */
export interface ClusterState {
  version: 1;
  cluster: string;
  mode: Mode;
  /** Why the mode is what it is (e.g. "started passive: two writable hosts"). */
  modeReason?: string;
  hosts: Record<string, HostRecord>;
  /** role -> ip -> host holding it (null: unassigned). */
  roles: Record<string, Record<string, string | null>>;
  /** An operation in flight (switchover/failover), so a restart can finish or undo it. */
  operation?: {
    kind: string;
    role: string;
    from?: string;
    to: string;
    startedAt: number;
    step: string;
  };
  /** Engine: exclusive roles the operator placed with move-role (role -> host); `prefer` does not pull them back. */
  pinned?: Record<string, string>;
  /** Engine: roles taken from hosts by firing alert rules (host -> roles), given back when the alert resolves. */
  dropped?: Record<string, string[]>;
  /** Engine: the last failover's promotion point, to name writes the old writer has that the new one lacks. */
  lastPromotion?: { host: string; from: string; position: string };
  updatedAt: number;
}

/** "Where is the cluster state kept?" First implementation: a JSON file in state_dir. */
export interface ClusterStateStore {
  load(): Promise<ClusterState | undefined>;
  save(state: ClusterState): Promise<void>;
  describe(): string;
}
