import type { LoadedConfig } from '../config/load.js';
import type { HostObservation } from '../domain/observation.js';

/** Above this, IO-thread-only evidence of a silently lost writer is slow. */
export const SLOW_NET_TIMEOUT_SECONDS = 10;

/**
 * A replica without an agent is an observer only through its IO thread, which notices a silent
 * loss of its master only after slave_net_timeout. The warning names the fix; undefined when the
 * host is fine (it has an agent, no replication, or a short timeout).
 */
export function slowReplicaTimeoutWarning(
  observation: HostObservation,
  hosts: LoadedConfig['hosts'],
): string | undefined {
  const timeout = observation.slaveNetTimeoutSeconds;
  if (!observation.replication || timeout === undefined || timeout <= SLOW_NET_TIMEOUT_SECONDS)
    return undefined;
  if (hosts[observation.host]?.agent !== undefined) return undefined;
  return `${observation.host} has no agent and slave_net_timeout=${timeout}s: a silently lost writer is confirmed by its IO thread only after that long; run an agent on it (hosts.${observation.host}.agent) or lower slave_net_timeout`;
}
