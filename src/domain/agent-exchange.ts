/**
 * The wire format of the manager's per-cycle exchange with each host's agent (POST /api/v1/sync):
 * shared by the manager (src/actuator) and the agent (src/agent).
 */
export interface SyncRequest {
  /** The manager's exchange protocol (src/domain/protocol.ts); absent from builds before it existed (1). */
  protocol?: number;
  /** The manager's sequence number: the agent refuses one older than a change it already applied. */
  seq: number;
  /** The agent's host name in the cluster. */
  host: string;
  interface?: string;
  prefix: number;
  /** Every VIP this host must hold; the agent removes any of its own VIPs not listed. */
  vips: string[];
  interval_ms: number;
  /** The writer's MySQL port, probed from this host (absent on the writer itself). */
  writer?: { host: string; address: string; port: number; timeout_ms: number };
  /** Only for the writer's agent: its lease (invariant 7). */
  lease?: {
    duration_ms: number;
    voters: Array<{ host: string; url: string }>;
    managers: number;
    writer_vips: string[];
  };
  /**
   * Every role this host holds now: a role IP assigned to it, or, for a role without IPs, its
   * assignment. The agent's /health/writer and /health/reader answer from it.
   */
  roles?: string[];
  /** The writer role's name (which of `roles` makes this host the writer). */
  writer_role?: string;
  /** monitor.max_lag: /health/reader answers 503 while this host's replication lags more. */
  max_lag_ms?: number;
}

export interface SyncAnswer {
  /** The agent's exchange protocol; absent from builds before it existed (1). */
  protocol?: number;
  /** The agent's build (package version); absent from builds before the protocol field. */
  version?: string;
  seq: number;
  held: string[];
  added: string[];
  removed: string[];
  /** Writer VIPs in the desired set that were not added because this host's lease lapsed. */
  withheld: string[];
  probe?: { target: string; ok: boolean; refused: boolean; detail: string; started_ago_ms: number };
  /** host -> ms since that host's agent (as lease holder) last reached this one. */
  contacts: Record<string, number>;
  lease?: {
    holding: boolean;
    lapsed: boolean;
    /** Only a proved fence: read_only=ON read back, or the server process gone. */
    fenced: boolean;
    quorum_ago_ms: number | null;
    reached: string[];
  };
  /** Whether this agent could fence its server now (login and privileges), from its last check. */
  fence_ready?: { ready: boolean; detail: string; checked_ago_ms: number };
  /** This host's fence while one is wanted (its lease lapsed or was released). */
  fence?: FenceReport;
}

export interface FenceReport {
  proved: boolean;
  /** read_only | stopped | not_running | unproved */
  how: string;
  detail: string;
  reason: string;
  ago_ms: number;
  attempts: number;
}

/** The agent's answer to POST /api/v1/lease/release. */
export interface ReleaseAnswer {
  /** True only when the fence was proved; otherwise the agent keeps trying and says why here. */
  fenced: boolean;
  how: string;
  detail: string;
  /**
   * Fenced with read_only (the server up): its GTID position read after the proof. Optional on
   * the wire (an agent of the previous protocol does not send it): the manager then reads it
   * itself before it promotes anyone.
   */
  position?: string;
}
