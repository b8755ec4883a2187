import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { EngineConfig } from './context.js';
import { isEligible } from './roles.js';

export interface ReadOnlyPlan {
  /** Hosts to set read_only=ON, with why. */
  setReadOnly: { host: string; reason: string }[];
  /** The writer-role holder to make writable once every other host is known read-only. */
  makeWritable?: { host: string; reason: string };
  /** With no writer-role holder: the single writable, eligible host that becomes the holder. */
  adopt?: { host: string; reason: string };
  /** Why the engine refuses to pick a writer (e.g. two writable hosts and no holder). */
  refusal?: string;
}

export interface InvariantInput {
  config: Pick<EngineConfig, 'hosts' | 'roles'>;
  writerRole: string;
  state: ClusterState;
  observations: ReadonlyMap<string, HostObservation>;
  dropped?: ReadonlyMap<string, ReadonlySet<string>>;
}

/**
 * Invariant 1, from observations: exactly the writer-role holder is writable. Any other host
 * seen with read_only=OFF is set read-only. Two writable hosts and no holder: all of them go
 * read-only and the engine refuses to guess which one had the real writes.
 */
export function planReadOnly(input: InvariantInput, writer: string | null): ReadOnlyPlan {
  const plan: ReadOnlyPlan = { setReadOnly: [] };
  const writable = [...input.observations.values()]
    .filter((obs) => obs.reachable && obs.readOnly === false)
    .map((obs) => obs.host);
  if (writer === null) {
    if (writable.length > 1) {
      plan.refusal = `${writable.join(' and ')} are writable and no host holds the ${input.writerRole} role: refusing to guess, all set read-only`;
      for (const host of writable) plan.setReadOnly.push({ host, reason: plan.refusal });
      return plan;
    }
    const only = writable[0];
    if (only !== undefined) {
      const inRole = input.config.roles[input.writerRole]?.hosts.includes(only) ?? false;
      if (
        inRole &&
        isEligible(
          { hosts: input.state.hosts, writerRole: input.writerRole, dropped: input.dropped },
          input.writerRole,
          only,
        )
      ) {
        plan.adopt = {
          host: only,
          reason: `${only} is the only writable host and may hold ${input.writerRole}`,
        };
      } else {
        plan.setReadOnly.push({
          host: only,
          reason: `${only} is writable but may not hold ${input.writerRole} (${input.state.hosts[only]?.state ?? 'unknown'})`,
        });
      }
    }
    return plan;
  }
  for (const host of writable) {
    if (host !== writer)
      plan.setReadOnly.push({
        host,
        reason: `read_only=OFF but ${writer} holds ${input.writerRole}`,
      });
  }
  const writerObs = input.observations.get(writer);
  const eligible = isEligible(
    { hosts: input.state.hosts, writerRole: input.writerRole, dropped: input.dropped },
    input.writerRole,
    writer,
  );
  if (writerObs?.reachable && writerObs.readOnly === true && eligible) {
    // Only when every other host is known not to take writes: read-only now (or about to be),
    // or lost by the monitor (HARD_OFFLINE). An unreachable host in another state might be a live writer.
    const unknown = Object.keys(input.config.hosts).filter((host) => {
      if (host === writer) return false;
      const obs = input.observations.get(host);
      if (obs?.reachable) return false;
      return input.state.hosts[host]?.state !== 'HARD_OFFLINE';
    });
    if (unknown.length === 0)
      plan.makeWritable = {
        host: writer,
        reason: `${writer} holds ${input.writerRole} but is read-only`,
      };
  }
  return plan;
}
