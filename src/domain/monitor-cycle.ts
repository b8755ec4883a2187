import type { ClusterState } from './cluster-state.js';
import type { HostState } from './host-state.js';
import type { HostObservation } from './observation.js';

/**
 * One monitor cycle's result: what every host looked like and which host states changed.
 * Produced by src/monitor; read by the exporter, the API and the daemon, which must not depend
 * on the monitor itself.
 */
export interface MonitorCycle {
  /** Epoch ms at the start of the cycle. */
  at: number;
  observations: HostObservation[];
  state: ClusterState;
  networkOk: boolean;
  networkDetail: string;
  transitions: Array<{ host: string; from: HostState; to: HostState; reason: string }>;
}
