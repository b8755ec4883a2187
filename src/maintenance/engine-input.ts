import type { ClusterState } from '../domain/cluster-state.js';

/**
 * The engine's eligibility input with maintenance folded in: a host in maintenance is ineligible
 * for every role it does not hold now, so no role (the writer included: no failover onto it)
 * goes to it. The roles it holds are kept by the engine skipping moves away from it, and the
 * writer role by not reconciling a writer in maintenance at all.
 */
export function droppedWithMaintenance(
  dropped: ReadonlyMap<string, ReadonlySet<string>>,
  maintenance: ReadonlySet<string>,
  roles: ClusterState['roles'],
  roleNames: readonly string[],
): ReadonlyMap<string, ReadonlySet<string>> {
  if (maintenance.size === 0) return dropped;
  const result = new Map(dropped);
  for (const host of maintenance) {
    const held = new Set(
      Object.entries(roles)
        .filter(([, ips]) => Object.values(ips).includes(host))
        .map(([role]) => role),
    );
    result.set(
      host,
      new Set([...(dropped.get(host) ?? []), ...roleNames.filter((role) => !held.has(role))]),
    );
  }
  return result;
}
