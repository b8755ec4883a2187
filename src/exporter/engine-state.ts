import type { EngineConfig } from '../engine/context.js';
import type { ClusterState } from '../domain/cluster-state.js';
import { rolesHeldBy } from '../engine/roles.js';
import type { SwitchyardMetrics } from './metrics.js';

/**
 * The one writer of the gauges that describe the engine's state: the mode, which host holds each
 * role and role IP, and whether the alerting pipeline is up. The engine calls it after every
 * change of its state (cycle, alert, operator command, mode change, adoption from etcd), so the
 * gauges follow one rule wherever the change came from.
 */
export function exportEngineState(
  metrics: SwitchyardMetrics,
  input: {
    config: Pick<EngineConfig, 'hosts' | 'roles'>;
    writerRole: string;
    state: ClusterState;
    pipelineUp: boolean;
  },
): void {
  const { config, state } = input;
  metrics.setMode(state.mode);
  metrics.roleIpAssigned.reset();
  // Configured IPs only: an IP-less role's slot is not an address anyone can route to.
  for (const [role, roleConfig] of Object.entries(config.roles))
    for (const ip of roleConfig.ips) {
      const holder = state.roles[role]?.[ip];
      if (holder) metrics.roleIpAssigned.set({ role, ip, host: holder }, 1);
    }
  metrics.roleAssigned.reset();
  for (const host of Object.keys(config.hosts))
    for (const role of rolesHeldBy(host, config.roles, state, input.writerRole))
      metrics.roleAssigned.set({ role, host }, 1);
  metrics.alertingPipelineUp.set(input.pipelineUp ? 1 : 0);
}
