import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { EngineConfig } from './context.js';
import { holderOf } from './roles.js';

export interface StartupCheck {
  /** Why the stored state and the live cluster disagree; non-empty starts the engine passive. */
  problems: string[];
  /** Writable hosts that must become read-only before anything else (invariant 1). */
  makeReadOnly: { host: string; reason: string }[];
}

/**
 * Compares the stored state with the live cluster at start: several writable hosts (only the
 * writer the stored state names may stay writable; none if it names none), and role VIPs found
 * on a host where the stored state does not put them. A fresh state (no roles yet) has nothing
 * to disagree with about VIPs.
 */
export async function checkStartup(input: {
  config: Pick<EngineConfig, 'hosts' | 'roles'>;
  writerRole: string;
  state: ClusterState;
  observations: ReadonlyMap<string, HostObservation>;
  listVips: (host: string) => Promise<string[]>;
}): Promise<StartupCheck> {
  const problems: string[] = [];
  const makeReadOnly: StartupCheck['makeReadOnly'] = [];
  const writable = [...input.observations.values()]
    .filter((obs) => obs.reachable && obs.readOnly === false)
    .map((obs) => obs.host);
  const writer = holderOf(input.state.roles, input.writerRole);
  if (writable.length > 1) {
    problems.push(
      `${writable.join(' and ')} are writable${writer ? ` (the stored state names ${writer})` : ' and the stored state names no writer'}`,
    );
    for (const host of writable.filter((item) => item !== writer)) {
      makeReadOnly.push({
        host,
        reason:
          writer && writable.includes(writer)
            ? `start-up: ${host} is writable but the stored state names ${writer}`
            : 'start-up: several writable hosts and none named by the stored state: refusing to guess',
      });
    }
  }
  if (Object.keys(input.state.roles).length > 0) {
    for (const host of Object.keys(input.config.hosts)) {
      let vips: string[];
      try {
        vips = await input.listVips(host);
      } catch {
        continue; // an unreachable agent says nothing about where VIPs are
      }
      for (const [role, roleConfig] of Object.entries(input.config.roles)) {
        for (const ip of roleConfig.ips) {
          const stored = input.state.roles[role]?.[ip] ?? null;
          if (vips.includes(ip) && stored !== host)
            problems.push(
              `VIP ${ip} (${role}) is on ${host} but the stored state puts it on ${stored ?? 'no host'}`,
            );
        }
      }
    }
  }
  return { problems, makeReadOnly };
}
