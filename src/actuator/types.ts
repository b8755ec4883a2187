import type { ReleaseAnswer, SyncAnswer, SyncRequest } from '../domain/agent-exchange.js';

/**
 * The engine's view of Switchyard's hands. Every method checks its preconditions, is safe to
 * repeat (adding an IP twice or removing an absent one is a no-op), and throws an ActionError
 * that says what was and was not done. With `dryRun`, nothing runs and the plan is returned.
 */
export interface PlannedStep {
  action: string;
  host: string;
  /** What would run, e.g. "SET GLOBAL read_only=ON" or "ip addr add 10.0.0.100/24 dev eth0". */
  description: string;
}

export class ActionError extends Error {
  override name = 'ActionError';
  constructor(
    message: string,
    /** Steps completed before the failure, so the caller can undo or report them. */
    readonly completed: PlannedStep[] = [],
  ) {
    super(message);
  }
}

/** Refused because an invariant would break (e.g. errant GTIDs); the message names why. */
export class RefusedError extends ActionError {
  override name = 'RefusedError';
}

export interface FenceResult {
  readOnly: boolean;
  killedConnections: number;
}

export interface MysqlActuator {
  /** Sets read_only and verifies it by reading it back. */
  setReadOnly(host: string, on: boolean): Promise<void>;
  /** read_only=ON, then (after the configured grace) kill client connections other than replication and Switchyard's own. */
  fence(host: string): Promise<FenceResult>;
  /** MASTER_GTID_WAIT; resolves true when `host` has applied `position`, false on timeout. */
  waitForGtid(host: string, position: string, timeoutMs: number): Promise<boolean>;
  /** Repoints a replica to a new master by GTID; refuses (RefusedError) if the master lacks the replica's transactions. */
  repoint(replica: string, newMaster: string): Promise<void>;
  /**
   * STOP SLAVE. `ioInBackground`: only the SQL thread is awaited (nothing more is applied); the IO
   * thread's stop, which on a semi-sync replica of a vanished master waits for a kill connection
   * to it (about 2 s), finishes in the background and is journalled.
   */
  stopReplication(host: string, options?: { ioInBackground?: boolean }): Promise<void>;
  /** STOP SLAVE IO_THREAD: no more events fetched; what was received is still applied. */
  stopIoThread(host: string): Promise<void>;
  /**
   * START SLAVE IO_THREAD, undoing stopIoThread: resolves once the thread runs or is connecting,
   * without waiting for it to reach its master (which may be gone: it retries by itself).
   */
  startIoThread(host: string): Promise<void>;
  /** START SLAVE, undoing stopReplication: the SQL thread runs, the IO thread runs or is connecting. */
  resumeReplication(host: string): Promise<void>;
  startReplication(host: string): Promise<void>;
}

/**
 * How long one VIP call may hold its caller: a move a monitor cycle makes is tried once, briefly,
 * and left to the next cycle, so that an agent that stopped answering cannot delay the cycle's
 * checks (and the failover they may lead to).
 */
export interface VipCallBound {
  timeoutMs: number;
  retries: number;
}

export interface VipActuator {
  /** Without `bound`, actuator.agent_timeout and agent_retries. */
  addVip(host: string, ip: string, bound?: VipCallBound): Promise<void>;
  removeVip(host: string, ip: string, bound?: VipCallBound): Promise<void>;
  listVips(host: string): Promise<string[]>;
}

export interface Actuator extends MysqlActuator, VipActuator {
  /** Plans instead of running when true (the daemon's passive mode). */
  readonly dryRun: boolean;
  /** Steps planned or run so far in this actuator's life; passive mode prints these. */
  readonly steps: PlannedStep[];
}

/**
 * The manager's per-cycle exchange with each host's agent: the whole desired VIP set, the writer
 * to probe and, for the writer's agent, its lease. Bookkeeping-only VIPs (no actuator.vip) answer
 * as if every host held exactly its set.
 */
export interface AgentTransport {
  /** Orders every VIP change sent to agents; taken when a desired set is computed. */
  nextSeq(): number;
  /** The host's agent URL, undefined without one (or without real VIPs). */
  agentUrl(host: string): string | undefined;
  sync(host: string, request: SyncRequest, timeoutMs: number): Promise<SyncAnswer>;
  /** Asks the old writer's agent to fence now and hold no lease; resolves with what it proved. */
  releaseLease(host: string, reason: string, timeoutMs: number): Promise<ReleaseAnswer>;
}
