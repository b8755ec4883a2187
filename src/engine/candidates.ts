import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { EngineConfig } from './context.js';
import type { GtidOps } from '../mysql/gtid.js';
import { isEligible } from './roles.js';
import { knownPosition } from './topology.js';

export interface HostPosition {
  host: string;
  /** Received from its master (Gtid_IO_Pos), or its applied position when it does not replicate. */
  received: string;
  applied: string;
  /** received + applied: what it has once its relay log is applied. */
  known: string;
}

export type CandidateChoice =
  | { ok: true; host: string; waitFor?: string; reason: string; positions: HostPosition[] }
  | { ok: false; reason: string; positions: HostPosition[] };

export interface CandidateInput {
  config: Pick<EngineConfig, 'roles' | 'hosts'>;
  writerRole: string;
  state: ClusterState;
  observations: ReadonlyMap<string, HostObservation>;
  gtid: GtidOps;
  dropped?: ReadonlyMap<string, ReadonlySet<string>>;
}

/**
 * Invariant 2: the writer role goes only to the writer-role host that has every transaction
 * any reachable host has (received counts: it waits for its relay log before it is promoted).
 * Ties go to the `prefer` host, then to the configured order. No such host: refuse, naming
 * what each candidate lacks.
 */
export function chooseWriterCandidate(
  input: CandidateInput,
  exclude: string[],
  /** A writer beats no writer: hosts held only for a restart or flapping count as eligible. */
  options: { allowHeld?: boolean } = {},
): CandidateChoice {
  const role = input.config.roles[input.writerRole];
  if (!role)
    return { ok: false, reason: `no role "${input.writerRole}" configured`, positions: [] };
  const positions: HostPosition[] = [];
  for (const obs of input.observations.values()) {
    if (exclude.includes(obs.host) || !obs.reachable || !obs.gtid) continue;
    const known = knownPosition(obs, input.gtid.merge) as string;
    positions.push({
      host: obs.host,
      received: obs.replication?.gtidIoPos || obs.gtid.currentPos,
      applied: obs.gtid.currentPos,
      known,
    });
  }
  const rejected: string[] = [];
  const candidates: HostPosition[] = [];
  for (const host of role.hosts) {
    if (exclude.includes(host)) continue;
    const position = positions.find((item) => item.host === host);
    if (!position) rejected.push(`${host}: not reachable or no GTID position`);
    else if (
      !isEligible(
        { hosts: input.state.hosts, writerRole: input.writerRole, dropped: input.dropped },
        input.writerRole,
        host,
      ) &&
      !(options.allowHeld && heldOnly(input, host))
    ) {
      rejected.push(
        `${host}: ${input.state.hosts[host]?.state ?? 'unknown'}${input.state.hosts[host]?.held ? ' (held)' : ''}${input.dropped?.get(host)?.has(input.writerRole) ? ' (dropped by an alert, or in maintenance)' : ''}`,
      );
    } else candidates.push(position);
  }
  if (candidates.length === 0) {
    return {
      ok: false,
      reason: `no eligible candidate for ${input.writerRole}: ${rejected.join('; ') || 'none configured'}`,
      positions,
    };
  }
  const complete: HostPosition[] = [];
  const lacking: string[] = [];
  for (const candidate of candidates) {
    const gaps = positions
      .filter((other) => other.host !== candidate.host)
      .map((other) => ({
        other: other.host,
        missing: input.gtid.missing(candidate.known, other.known),
      }))
      .filter((gap) => gap.missing.length > 0);
    if (gaps.length === 0) complete.push(candidate);
    else
      lacking.push(
        `${candidate.host} lacks ${gaps.map((gap) => `${gap.missing.join(',')} that ${gap.other} has`).join(' and ')}`,
      );
  }
  if (complete.length === 0) {
    return {
      ok: false,
      reason: `no candidate has every transaction a reachable host has: ${lacking.join('; ')}`,
      positions,
    };
  }
  const preferred = role.prefer ? complete.find((item) => item.host === role.prefer) : undefined;
  const chosen = preferred ?? (complete[0] as HostPosition);
  const replicates = input.observations.get(chosen.host)?.replication !== undefined;
  return {
    ok: true,
    host: chosen.host,
    waitFor: replicates ? chosen.received : undefined,
    reason: `${chosen.host} has every transaction of the reachable hosts (${chosen.known || 'empty'})${preferred ? ', preferred host' : ''}${lacking.length ? `; not chosen: ${lacking.join('; ')}` : ''}`,
    positions,
  };
}

/**
 * Held for the operator only because it restarted or flapped (not ADMIN_OFFLINE, not dropped by
 * an alert, not lagging or broken): such a host may still become the writer when there is no other.
 */
export function heldOnly(
  input: Pick<CandidateInput, 'state' | 'dropped' | 'writerRole'>,
  host: string,
): boolean {
  const record = input.state.hosts[host];
  if (!record?.held || !/^(restarted|flapping)/.test(record.held)) return false;
  if (input.dropped?.get(host)?.has(input.writerRole)) return false;
  return record.state === 'AWAITING_RECOVERY' || record.state === 'ONLINE';
}

/**
 * Target of a planned switchover away from a live, reachable writer (issue: under write load
 * replicas are always a few transactions apart, and which one is ahead changes from moment to
 * moment, so "has everything right now" is the wrong test). The switchover fences the writer,
 * reads its final position and waits for the target to apply it: any eligible candidate that
 * replicates from the writer and has nothing the writer lacks can do that. Among them: the
 * `prefer` host, then the least lag, then the configured order.
 */
export function chooseSwitchoverTarget(
  input: CandidateInput & { config: Pick<EngineConfig, 'roles' | 'hosts'> },
  writer: string,
  exclude: string[],
  /** Transactions a host has that the writer lacks (errant): such a host cannot catch up cleanly. */
  errantOf: (host: string) => string[],
  replicatesFromWriter: (host: string) => boolean,
): CandidateChoice {
  const role = input.config.roles[input.writerRole];
  if (!role)
    return { ok: false, reason: `no role "${input.writerRole}" configured`, positions: [] };
  const rejected: string[] = [];
  const candidates: Array<{ host: string; lag: number }> = [];
  for (const host of role.hosts) {
    if (host === writer || exclude.includes(host)) continue;
    const obs = input.observations.get(host);
    if (!obs?.reachable) rejected.push(`${host}: not reachable`);
    else if (
      !isEligible(
        { hosts: input.state.hosts, writerRole: input.writerRole, dropped: input.dropped },
        input.writerRole,
        host,
      )
    ) {
      rejected.push(
        `${host}: ${input.state.hosts[host]?.state ?? 'unknown'}${input.state.hosts[host]?.held ? ` (held: ${input.state.hosts[host]?.held})` : ''}${input.dropped?.get(host)?.has(input.writerRole) ? ' (dropped by alert)' : ''}`,
      );
    } else if (!replicatesFromWriter(host))
      rejected.push(
        `${host}: does not replicate from the writer ${writer}, so it cannot catch up from it`,
      );
    else {
      const errant = errantOf(host);
      if (errant.length > 0)
        rejected.push(`${host}: has transactions the writer lacks (${errant.join(', ')})`);
      else
        candidates.push({
          host,
          lag:
            obs.heartbeatLagSeconds ??
            obs.replication?.secondsBehindMaster ??
            Number.POSITIVE_INFINITY,
        });
    }
  }
  if (candidates.length === 0)
    return {
      ok: false,
      reason: `no candidate can take ${input.writerRole} from ${writer}: ${rejected.join('; ') || 'none configured'}`,
      positions: [],
    };
  candidates.sort((a, b) =>
    a.host === role.prefer
      ? -1
      : b.host === role.prefer
        ? 1
        : a.lag - b.lag || role.hosts.indexOf(a.host) - role.hosts.indexOf(b.host),
  );
  const chosen = candidates[0] as { host: string; lag: number };
  const lag = Number.isFinite(chosen.lag) ? `lag ${chosen.lag.toFixed(3)} s` : 'lag unknown';
  return {
    ok: true,
    host: chosen.host,
    reason: `${chosen.host} replicates from ${writer} and is eligible (${chosen.host === role.prefer ? 'preferred host, ' : ''}${lag}); it catches up after the fence${rejected.length ? `; not chosen: ${rejected.join('; ')}` : ''}`,
    positions: [],
  };
}

export interface CatchUpPlan {
  /** The writer candidate that lacks transactions. */
  candidate: string;
  /** A reachable host that has every transaction any reachable host has. */
  donor: string;
  /** What the candidate must reach before it may be promoted. */
  position: string;
  reason: string;
}

/**
 * When no writer candidate has everything (say a replica received one more transaction from
 * the dead writer than the passive master), invariant 2 lets the move wait: the candidate can
 * replicate the missing transactions from the host that has them all, by GTID, and then be
 * promoted with nothing lost. Only when that donor has everything the candidate has (no errant
 * transactions on the candidate) and the candidate is eligible.
 */
export function planCatchUp(
  input: CandidateInput,
  exclude: string[],
  positions: HostPosition[],
): CatchUpPlan | undefined {
  const role = input.config.roles[input.writerRole];
  if (!role) return undefined;
  const reachable = positions.filter((position) => !exclude.includes(position.host));
  const donor = reachable.find((position) =>
    reachable.every(
      (other) =>
        other.host === position.host ||
        input.gtid.missing(position.known, other.known).length === 0,
    ),
  );
  if (!donor) return undefined;
  const eligible = role.hosts
    .filter((host) => !exclude.includes(host) && host !== donor.host)
    .filter((host) =>
      isEligible(
        { hosts: input.state.hosts, writerRole: input.writerRole, dropped: input.dropped },
        input.writerRole,
        host,
      ),
    )
    .sort((a, b) =>
      a === role.prefer
        ? -1
        : b === role.prefer
          ? 1
          : role.hosts.indexOf(a) - role.hosts.indexOf(b),
    );
  for (const host of eligible) {
    const candidate = reachable.find((position) => position.host === host);
    if (!candidate) continue;
    // The donor must have everything the candidate has, or repointing would lose the candidate's own.
    if (input.gtid.missing(donor.known, candidate.known).length > 0) continue;
    const lacking = input.gtid.missing(candidate.known, donor.known);
    return {
      candidate: host,
      donor: donor.host,
      position: donor.known,
      reason: `${host} lacks ${lacking.join(',')} that ${donor.host} has: it replicates them from ${donor.host} before promotion`,
    };
  }
  return undefined;
}
