import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { EngineConfig } from './context.js';
import { ioConnected, replicasOf } from './topology.js';

export interface Evidence {
  dead: boolean;
  reason: string;
  inputs: Record<string, unknown>;
}

/**
 * DESIGN.md invariant 4: the writer is dead only when the manager lost it for
 * failures_before_down checks (the monitor made it HARD_OFFLINE) AND every reachable replica of
 * it lost its connection too. One replica still connected means the manager's own path is
 * broken, not the writer: failing over then would make two writers.
 */
export function writerDeathEvidence(
  writer: string,
  input: { config: Pick<EngineConfig, 'hosts' | 'monitor'>; state: ClusterState; observations: ReadonlyMap<string, HostObservation> },
): Evidence {
  const record = input.state.hosts[writer];
  const observation = input.observations.get(writer);
  const limit = input.config.monitor.failures_before_down;
  if (observation?.reachable) {
    return { dead: false, reason: `the manager reaches ${writer}`, inputs: { writer } };
  }
  if (!record || record.state !== 'HARD_OFFLINE') {
    return {
      dead: false,
      reason: `${writer} failed ${record?.failures ?? 0} of ${limit} checks and is ${record?.state ?? 'unknown'}, not HARD_OFFLINE yet`,
      inputs: { writer, state: record?.state, failures: record?.failures },
    };
  }
  const replicas = replicasOf(writer, input.observations, input.config);
  const replicaView = replicas.map((obs) => ({
    host: obs.host,
    ioRunning: obs.replication?.ioRunning,
    ioState: obs.replication?.ioState,
    lastIoError: obs.replication?.lastIoError,
  }));
  const stillConnected = replicas.filter((obs) => obs.replication && ioConnected(obs.replication)).map((obs) => obs.host);
  if (stillConnected.length > 0) {
    return {
      dead: false,
      reason: `no failover: the manager cannot reach ${writer}, but ${stillConnected.join(', ')} still replicate${stillConnected.length === 1 ? 's' : ''} from it (IO thread connected); the manager's path is broken, not the writer`,
      inputs: { writer, replicas: replicaView },
    };
  }
  const lost = replicas.map((obs) => `${obs.host} (${obs.replication?.lastIoError || obs.replication?.ioState || 'IO thread stopped'})`);
  return {
    dead: true,
    reason:
      replicas.length === 0
        ? `${writer} is HARD_OFFLINE after ${limit} failed checks and no reachable host replicates from it`
        : `${writer} is HARD_OFFLINE after ${limit} failed checks and its replicas lost it too: ${lost.join('; ')}`,
    inputs: { writer, replicas: replicaView },
  };
}
