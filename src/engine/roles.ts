import type { RoleConfig } from '../config/schema.js';
import type { ClusterState, HostRecord } from '../domain/cluster-state.js';
import { mayHoldRole } from '../domain/host-state.js';

/**
 * Slot name under which an exclusive role without IPs (e.g. a writer reached by DNS or a
 * proxy, or the loopback sandbox) records its holder in ClusterState.roles. No VIP is moved for it.
 */
export const NO_IP = '-';

/** The IP slots of a role: its IPs, or NO_IP for an exclusive role without IPs. */
export function roleSlots(config: RoleConfig): string[] {
  return config.ips.length === 0 && config.exclusive ? [NO_IP] : config.ips;
}

/** One IP changing hands; `from`/`to` null means unassigned. */
export interface RoleMove {
  role: string;
  ip: string;
  from: string | null;
  to: string | null;
  reason: string;
}

export interface Unassigned {
  role: string;
  ip: string;
  reason: string;
}

export interface RoleAssignment {
  roles: ClusterState['roles'];
  moves: RoleMove[];
  unassigned: Unassigned[];
}

export interface AssignmentInput {
  roles: Record<string, RoleConfig>;
  hosts: Record<string, HostRecord>;
  current: ClusterState['roles'];
  /** The exclusive role whose holder is the writable host: it may stay on a delayed/failing host. */
  writerRole: string;
  /** Roles taken from a host by an alert (drop_roles) or the operator: host -> roles. */
  dropped?: ReadonlyMap<string, ReadonlySet<string>>;
  /** Exclusive roles the operator moved (role -> host): `prefer` does not pull them back while that host holds them. */
  pinned?: ReadonlyMap<string, string>;
}

/** Whether `host` may hold `role` now: host state rules of DESIGN.md plus alert-driven drops. */
export function isEligible(
  input: Pick<AssignmentInput, 'hosts' | 'writerRole' | 'dropped'>,
  role: string,
  host: string,
): boolean {
  const record = input.hosts[host];
  if (!record || record.held) return false;
  if (input.dropped?.get(host)?.has(role)) return false;
  return mayHoldRole(record.state, role === input.writerRole);
}

function ineligibleReason(input: AssignmentInput, role: string, host: string): string {
  const record = input.hosts[host];
  if (!record) return `${host} is not a known host`;
  if (record.held) return `${host} is held (${record.held})`;
  if (input.dropped?.get(host)?.has(role))
    return `${role} was dropped from ${host} by an alert rule`;
  return `${host} is ${record.state}`;
}

/**
 * Pure role assignment: exclusive roles keep their holder while it is eligible (and give way
 * to the `prefer` host once that is ONLINE); balanced roles spread IPs evenly over eligible
 * hosts and move an IP only when its holder became ineligible or the spread is off by more
 * than one, so a returning host takes back exactly the IPs needed to even things out.
 */
export function assignRoles(input: AssignmentInput): RoleAssignment {
  const roles: ClusterState['roles'] = {};
  const moves: RoleMove[] = [];
  const unassigned: Unassigned[] = [];
  for (const [role, config] of Object.entries(input.roles)) {
    const current = input.current[role] ?? {};
    const eligible = config.hosts.filter((host) => isEligible(input, role, host));
    const next = config.exclusive
      ? assignExclusive(input, role, config, current, eligible)
      : assignBalanced(input, role, config, current, eligible);
    roles[role] = next.assignment;
    moves.push(...next.moves);
    for (const ip of roleSlots(config)) {
      if (next.assignment[ip] === null) {
        unassigned.push({
          role,
          ip,
          reason:
            eligible.length === 0
              ? `no eligible host for role ${role} (${config.hosts.map((host) => ineligibleReason(input, role, host)).join('; ')})`
              : 'unassigned',
        });
      }
    }
  }
  return { roles, moves, unassigned };
}

interface RoleResult {
  assignment: Record<string, string | null>;
  moves: RoleMove[];
}

function assignExclusive(
  input: AssignmentInput,
  role: string,
  config: RoleConfig,
  current: Record<string, string | null>,
  eligible: string[],
): RoleResult {
  const slots = roleSlots(config);
  const holder = slots.map((ip) => current[ip] ?? null).find((host) => host !== null) ?? null;
  let target: string | null;
  let reason: string;
  const pinned = holder !== null && input.pinned?.get(role) === holder && eligible.includes(holder);
  if (
    !pinned &&
    config.prefer &&
    eligible.includes(config.prefer) &&
    input.hosts[config.prefer]?.state === 'ONLINE' &&
    (input.hosts[config.prefer]?.failures ?? 0) === 0 &&
    holder !== config.prefer
  ) {
    target = config.prefer;
    reason = `${config.prefer} is the preferred host and ONLINE`;
  } else if (holder !== null && eligible.includes(holder)) {
    target = holder;
    reason = 'holder still eligible';
  } else {
    target = eligible[0] ?? null;
    reason =
      holder === null
        ? 'role was unassigned'
        : `holder lost eligibility: ${ineligibleReason(input, role, holder)}`;
    if (target === null) reason += '; no eligible host';
  }
  const assignment: Record<string, string | null> = {};
  const moves: RoleMove[] = [];
  for (const ip of slots) {
    assignment[ip] = target;
    const from = current[ip] ?? null;
    if (from !== target) moves.push({ role, ip, from, to: target, reason });
  }
  return { assignment, moves };
}

function assignBalanced(
  input: AssignmentInput,
  role: string,
  config: RoleConfig,
  current: Record<string, string | null>,
  eligible: string[],
): RoleResult {
  const assignment: Record<string, string | null> = {};
  const reasons = new Map<string, string>();
  const held = new Map<string, string[]>(eligible.map((host) => [host, []]));
  const free: string[] = [];
  for (const ip of config.ips) {
    const holder = current[ip] ?? null;
    const ips = holder === null ? undefined : held.get(holder);
    if (ips) {
      ips.push(ip);
      assignment[ip] = holder;
    } else {
      free.push(ip);
      reasons.set(
        ip,
        holder === null
          ? 'IP was unassigned'
          : `holder lost eligibility: ${ineligibleReason(input, role, holder)}`,
      );
    }
  }
  // A host that failed its last check keeps what it holds but receives nothing new: it may be
  // dying (a writer's replicas go REPLICATION_FAIL a moment before the writer is declared down).
  const receivers = eligible.filter((host) => (input.hosts[host]?.failures ?? 0) === 0);
  const fewest = (): string | undefined => {
    let best: string | undefined;
    for (const host of receivers)
      if (best === undefined || (held.get(host)?.length ?? 0) < (held.get(best)?.length ?? 0))
        best = host;
    return best;
  };
  const most = (): string | undefined => {
    let best: string | undefined;
    for (const host of eligible)
      if (best === undefined || (held.get(host)?.length ?? 0) > (held.get(best)?.length ?? 0))
        best = host;
    return best;
  };
  for (const ip of free) {
    const host = fewest();
    assignment[ip] = host ?? null;
    if (host) held.get(host)?.push(ip);
  }
  // Even out: only while one host has two or more IPs more than another; each move fixes one.
  for (;;) {
    const high = most();
    const low = fewest();
    if (high === undefined || low === undefined) break;
    const highIps = held.get(high) as string[];
    const lowIps = held.get(low) as string[];
    if (highIps.length - lowIps.length <= 1) break;
    const ip = highIps.pop() as string;
    lowIps.push(ip);
    assignment[ip] = low;
    reasons.set(
      ip,
      `rebalancing: ${high} held ${highIps.length + 1}, ${low} held ${lowIps.length - 1}`,
    );
  }
  const moves: RoleMove[] = [];
  for (const ip of config.ips) {
    const from = current[ip] ?? null;
    const to = assignment[ip] ?? null;
    if (from !== to) moves.push({ role, ip, from, to, reason: reasons.get(ip) ?? 'reassigned' });
  }
  return { assignment, moves };
}

/** The host holding an exclusive role (the first of its IPs that has a holder). */
export function holderOf(roles: ClusterState['roles'], role: string): string | null {
  for (const host of Object.values(roles[role] ?? {})) if (host) return host;
  return null;
}

/**
 * The roles `host` holds in `state`: a role IP (or an exclusive role's slot) assigned to it, and
 * every role without IPs that is not exclusive (readers routed by health checks or hooks) while
 * the host is eligible for it. What the agent's health endpoints and `show` report.
 */
export function rolesHeldBy(
  host: string,
  roles: Record<string, RoleConfig>,
  state: ClusterState,
  writerRole: string,
): string[] {
  const dropped = new Map(
    Object.entries(state.dropped ?? {}).map(([name, list]) => [name, new Set(list)]),
  );
  return Object.entries(roles)
    .filter(([role, config]) =>
      config.ips.length === 0 && !config.exclusive
        ? config.hosts.includes(host) &&
          isEligible({ hosts: state.hosts, writerRole, dropped }, role, host)
        : Object.values(state.roles[role] ?? {}).includes(host),
    )
    .map(([role]) => role);
}
