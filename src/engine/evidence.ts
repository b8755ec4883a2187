import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { EngineConfig } from './context.js';
import { ioConnected, replicatesFrom } from './topology.js';

export interface Evidence {
  dead: boolean;
  reason: string;
  inputs: Record<string, unknown>;
}

/** What another host's agent saw of the writer's MySQL port, in the manager's clock. */
export interface ObserverView {
  /** The host has an agent configured (it can be asked). */
  hasAgent: boolean;
  /** From the agent's last answer, when that answer is fresh and its probe aimed at the writer. */
  probe?: { ok: boolean; refused: boolean; startedAt: number; detail: string };
}

export interface EvidenceInput {
  config: Pick<EngineConfig, 'hosts' | 'monitor'>;
  state: ClusterState;
  observations: ReadonlyMap<string, HostObservation>;
  /** Per host: its agent's view of the writer (absent: no agents in this cluster). */
  agents?: ReadonlyMap<string, ObserverView>;
  /** Manager clock: start of the first of the manager's consecutive failed checks of the writer. */
  lostSince?: number;
}

type Verdict = { host: string; says: 'dead' | 'alive' | 'unknown'; why: string };

/**
 * DESIGN.md invariant 4: the writer is dead only on evidence.
 * 1. The manager lost it: `failures_before_down` failed checks (HARD_OFFLINE), or its port
 *    refuses connections (mysqld is gone; no need to wait for more checks).
 * 2. Every other host that can be asked agrees: its agent's probe of the writer's port fails, or
 *    its replication IO thread lost the writer. A probe that reached the writer after the manager
 *    lost it, or (for a host without an agent) a connected IO thread, says the writer lives: the
 *    manager's own path is broken, and failing over would make two writers. A host whose agent
 *    does not answer cannot be asked and never counts as agreeing, except through its IO thread.
 * Agents make a silent loss (no TCP reset) visible in seconds: an IO thread notices one only
 * after slave_net_timeout (60 s by default).
 */
export function writerDeathEvidence(writer: string, input: EvidenceInput): Evidence {
  const record = input.state.hosts[writer];
  const observation = input.observations.get(writer);
  const limit = input.config.monitor.failures_before_down;
  if (observation?.reachable)
    return { dead: false, reason: `the manager reaches ${writer}`, inputs: { writer } };
  const refused = observation?.refusal === 'refused';
  const hardOffline = record?.state === 'HARD_OFFLINE';
  if (!hardOffline && !refused) {
    return {
      dead: false,
      reason: `${writer} failed ${record?.failures ?? 0} of ${limit} checks${observation?.error ? ` (${observation.error})` : ''} and is ${record?.state ?? 'unknown'}, not HARD_OFFLINE yet`,
      inputs: { writer, state: record?.state, failures: record?.failures },
    };
  }
  const managerView = hardOffline
    ? `HARD_OFFLINE after ${limit} failed checks`
    : `refusing connections (${observation?.error ?? 'ECONNREFUSED'})`;

  const verdicts: Verdict[] = Object.keys(input.config.hosts)
    .filter((host) => host !== writer)
    .map((host) => observerVerdict(host, writer, input));
  const alive = verdicts.filter((verdict) => verdict.says === 'alive');
  const dead = verdicts.filter((verdict) => verdict.says === 'dead');
  const inputs = { writer, manager: managerView, observers: verdicts };
  if (alive.length > 0) {
    return {
      dead: false,
      reason: `no failover: the manager lost ${writer} (${managerView}), but ${alive.map((verdict) => `${verdict.host} (${verdict.why})`).join(', ')} still see${alive.length === 1 ? 's' : ''} it: the manager's path is broken, not the writer`,
      inputs,
    };
  }
  const askable =
    verdicts.some((verdict) => input.agents?.get(verdict.host)?.hasAgent) ||
    verdicts.some((verdict) => verdict.says !== 'unknown');
  if (dead.length === 0 && askable) {
    return {
      dead: false,
      reason: `the manager lost ${writer} (${managerView}) but no other host could confirm it yet (${verdicts.map((verdict) => `${verdict.host}: ${verdict.why}`).join('; ')})`,
      inputs,
    };
  }
  return {
    dead: true,
    reason:
      dead.length === 0
        ? `${writer} is ${managerView} and no other host has a view of it (no agents, no replicas)`
        : `${writer} is ${managerView} and the other hosts lost it too: ${dead.map((verdict) => `${verdict.host} (${verdict.why})`).join('; ')}${
            verdicts.length > dead.length
              ? `; not asked: ${verdicts
                  .filter((verdict) => verdict.says === 'unknown')
                  .map((verdict) => `${verdict.host} (${verdict.why})`)
                  .join('; ')}`
              : ''
          }`,
    inputs,
  };
}

function observerVerdict(host: string, writer: string, input: EvidenceInput): Verdict {
  const agent = input.agents?.get(host);
  const probe = agent?.probe;
  const obs = input.observations.get(host);
  const replication =
    obs?.reachable && obs.replication && replicatesFrom(obs.replication, writer, input.config)
      ? obs.replication
      : undefined;
  const ioLost = replication !== undefined && !ioConnected(replication);
  if (probe && !probe.ok)
    return { host, says: 'dead', why: `its agent's probe failed: ${probe.detail}` };
  if (ioLost && replication)
    return {
      host,
      says: 'dead',
      why: `IO thread lost it: ${replication.lastIoError || replication.ioState || 'stopped'}`,
    };
  if (probe?.ok) {
    // Only a probe that started after the manager lost the writer contradicts the manager.
    if (input.lostSince === undefined || probe.startedAt >= input.lostSince)
      return { host, says: 'alive', why: `its agent reached ${writer}'s port` };
    return { host, says: 'unknown', why: "its agent's last probe predates the loss" };
  }
  if (replication && !agent?.hasAgent) return { host, says: 'alive', why: 'IO thread connected' };
  if (agent?.hasAgent)
    return {
      host,
      says: 'unknown',
      why: replication
        ? 'its agent does not answer (IO thread still connected, which can lag slave_net_timeout)'
        : 'its agent does not answer',
    };
  return { host, says: 'unknown', why: 'no agent and no replication from the writer' };
}
