/** What the monitor saw of one host in one cycle. Produced by src/monitor, read by everything else. */
export const CHECK_NAMES = ['ping', 'mysql', 'rep_threads', 'rep_backlog', 'lag'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export interface CheckOutcome {
  ok: boolean;
  /** Epoch ms when the check finished. */
  at: number;
  durationMs: number;
  /** Human-readable detail: the error, or what was seen. */
  detail?: string;
}

export interface GtidPositions {
  binlogPos: string;
  slavePos: string;
  currentPos: string;
  /**
   * @@gtid_binlog_state: the last GTID per domain AND server_id in the binlog. Unlike the
   * positions (one GTID per domain), it tells whose transactions a host has, which is what
   * errant-transaction detection needs. Empty when the server does not report it.
   */
  binlogState?: string;
}

export interface ReplicationStatus {
  masterHost: string;
  masterPort: number;
  ioRunning: boolean;
  sqlRunning: boolean;
  /** IO thread state "Connecting" is not running, as far as failover evidence is concerned. */
  ioState: string;
  lastIoError: string;
  lastSqlError: string;
  secondsBehindMaster: number | null;
  /** Gtid_IO_Pos: what this replica has received from its master. */
  gtidIoPos: string;
  /** True while received transactions wait in the relay log. */
  relayBacklog: boolean;
}

export interface HostObservation {
  host: string;
  /** Epoch ms at the start of the cycle. */
  at: number;
  reachable: boolean;
  error?: string;
  /**
   * How the host's own kernel answered a failed connect: 'refused' (nothing listens: mysqld is
   * gone) or 'reset' (the connection was torn down, as while a killed mysqld is still exiting).
   * Absent for timeouts and everything else, which say nothing about the process.
   */
  refusal?: 'refused' | 'reset';
  readOnly?: boolean;
  uptimeSeconds?: number;
  /**
   * The server's own clock (epoch ms) when it answered the check, read with the uptime: together
   * they date the server's start without the manager's clock (src/monitor/restart.ts).
   */
  serverTimeMs?: number;
  /** CONNECTION_ID() of the check's own connection: grows while the server runs. */
  connectionId?: number;
  /**
   * false: the check ran on a connection kept from an earlier check (src/monitor/check-connections.ts),
   * whose id says nothing about a restart: ids only grow, but this one is as old as its login, and
   * another manager's newer login may have been saved. Only a fresh login's id is compared.
   */
  connectionFresh?: boolean;
  serverId?: number;
  version?: string;
  gtid?: GtidPositions;
  /** Absent when replication is not configured on this host. */
  replication?: ReplicationStatus;
  /** @@slave_net_timeout: how long its IO thread takes to notice a silently lost master. */
  slaveNetTimeoutSeconds?: number;
  /** @@gtid_strict_mode: errant-transaction handling relies on ON (MariaDB's default is OFF). */
  gtidStrictMode?: boolean;
  /** Heartbeat lag in seconds (sub-second precision); null when no heartbeat row is visible. */
  heartbeatLagSeconds?: number | null;
  checks: Partial<Record<CheckName, CheckOutcome>>;
}
