import type { HostObservation, ReplicationStatus } from '../domain/observation.js';
import type { EngineConfig } from './context.js';
import { ownEntry } from '../domain/own.js';

/** Whether a replica's configured master is `host` (by name or configured address, and port). */
export function replicatesFrom(
  replication: ReplicationStatus | undefined,
  host: string,
  config: Pick<EngineConfig, 'hosts'>,
): boolean {
  if (!replication) return false;
  const target = ownEntry(config.hosts, host);
  if (!target) return false;
  const sameHost = replication.masterHost === host || replication.masterHost === target.address;
  return sameHost && (replication.masterPort === target.port || replication.masterPort === 0);
}

/**
 * Whether the replica's IO thread is connected to its master right now. "Connecting" /
 * "Reconnecting" or a Last_IO_Error means it lost the master: evidence for a failover.
 */
export function ioConnected(replication: ReplicationStatus): boolean {
  return (
    replication.ioRunning &&
    replication.lastIoError === '' &&
    !/connecting/i.test(replication.ioState)
  );
}

/** Reachable hosts (other than `host`) whose replication points at `host`. */
export function replicasOf(
  host: string,
  observations: ReadonlyMap<string, HostObservation>,
  config: Pick<EngineConfig, 'hosts'>,
): HostObservation[] {
  return [...observations.values()].filter(
    (obs) => obs.host !== host && obs.reachable && replicatesFrom(obs.replication, host, config),
  );
}

/** Everything a host has received or applied: what it would have once its relay log is applied. */
export function knownPosition(
  obs: HostObservation,
  merge: (...positions: string[]) => string,
): string | undefined {
  if (!obs.gtid) return undefined;
  try {
    return merge(obs.gtid.currentPos, obs.gtid.binlogPos, obs.replication?.gtidIoPos ?? '');
  } catch {
    // A GTID implementation may refuse to merge diverged entries; the applied position is still true.
    return obs.gtid.currentPos;
  }
}
