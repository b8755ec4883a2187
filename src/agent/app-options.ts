import type { Logger } from '../log.js';
import type { SnapshotMethod } from '../snapshot/types.js';
import type { AgentConfig } from './config.js';
import type { ServerReading } from './health.js';
import type { LocalFence } from './local-fence.js';
import type { VipDriver } from './vip-driver.js';
import type { ProbeResult, ProbeTarget } from './writer-probe.js';

/** What the agent's HTTP app is built from; the route modules take it too. */
export interface AgentAppOptions {
  config: AgentConfig;
  driver: VipDriver;
  /** Absent when this build or host has no implementation for snapshot.method: endpoints answer 501. */
  snapshotMethod?: SnapshotMethod;
  getToken: () => string;
  logger?: Logger;
  /** Requests handled at once before 503 (default AGENT_LIMITS.maxInFlight). */
  maxInFlight?: number;
  /** Called when a gratuitous ARP finished (tests wait on it instead of sleeping). */
  onAnnounced?: (ip: string, result: { ok: boolean; detail: string }) => void;
  /** For tests: how the writer's port is probed. */
  probe?: (target: ProbeTarget, timeoutMs: number) => Promise<ProbeResult>;
  /** For tests: how another agent is reached for the lease. */
  ping?: (url: string, from: string, timeoutMs: number) => Promise<void>;
  /** For tests: the exchange protocol this agent speaks (default: this build's, or SWITCHYARD_PROTOCOL). */
  protocol?: number;
  /** For tests: the health endpoints' live read of the server (default: the `mysql` section). */
  readServer?: () => Promise<ServerReading>;
  /** For tests: the server fence (read_only and its escalation) with fakes. */
  fence?: LocalFence;
}
