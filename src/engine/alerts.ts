import type { RuleConfig } from '../config/schema.js';
import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { EngineConfig } from './context.js';
import type { IncomingAlert } from './types.js';
import { holderOf } from './roles.js';
import { isOwnName } from '../domain/own.js';

export const WATCHDOG_ALERTS = new Set(['Watchdog', 'SwitchyardWatchdog']);

/** Alerts about a host's own replication: never held against the writer (it replicates from the passive master, or from nobody after a failover). */
export const REPLICATION_ALERTS = new Set([
  'SwitchyardReplicationBroken',
  'SwitchyardReplicationLagHigh',
]);

export type AlertVerdict =
  | { kind: 'ignore'; reason: string; host?: string; role?: string }
  | { kind: 'drop'; host: string; roles: string[]; rule: RuleConfig; reason: string }
  | { kind: 'restore'; host: string; roles: string[]; rule: RuleConfig; reason: string };

export interface AlertInput {
  config: Pick<EngineConfig, 'hosts' | 'roles' | 'rules' | 'monitor'>;
  writerRole: string;
  state: ClusterState;
  observations: ReadonlyMap<string, HostObservation>;
  now: number;
}

/**
 * Maps one alert to an action by the config `rules`, after re-checking it against the latest
 * observation: Prometheus evaluates seconds ago and Alertmanager batches, so an alert may be
 * stale (the host no longer holds the role) or contradicted (the lag is already back under
 * max_lag, the manager reaches the "down" writer). Both are ignored with the reason.
 */
export function evaluateAlert(alert: IncomingAlert, input: AlertInput): AlertVerdict {
  const rule = input.config.rules.find((candidate) => candidate.alert === alert.name);
  if (!rule) return { kind: 'ignore', reason: `no rule for alert ${alert.name}` };
  const host = alert.labels.host ?? alert.labels.instance_host;
  if (!host) return { kind: 'ignore', reason: `alert ${alert.name} has no "host" label` };
  if (!isOwnName(input.config.hosts, host))
    return { kind: 'ignore', host, reason: `alert ${alert.name} names unknown host "${host}"` };
  const roles = rule.action === 'drop_roles' ? (rule.roles ?? []) : rule.role ? [rule.role] : [];
  const unknownRole = roles.find((role) => !isOwnName(input.config.roles, role));
  if (unknownRole)
    return {
      kind: 'ignore',
      host,
      reason: `rule for ${alert.name} names unknown role "${unknownRole}"`,
    };

  if (alert.status === 'resolved') {
    return {
      kind: 'restore',
      host,
      roles,
      rule,
      reason: `${alert.name} resolved for ${host}: ${roles.join(', ')} may return once ${host} is healthy`,
    };
  }
  if (alert.endsAt) {
    const ends = Date.parse(alert.endsAt);
    // Alertmanager sets endsAt in the future for firing alerts; a past one is a stale resend.
    if (
      Number.isFinite(ends) &&
      ends > 0 &&
      ends < input.now &&
      !alert.endsAt.startsWith('0001-')
    ) {
      return {
        kind: 'ignore',
        host,
        reason: `stale: ${alert.name} for ${host} ended at ${alert.endsAt}`,
      };
    }
  }
  const obs = input.observations.get(host);
  if (!obs)
    return {
      kind: 'ignore',
      host,
      reason: `no live observation of ${host} yet: cannot re-check ${alert.name}`,
    };
  const contradiction = contradicts(alert.name, host, obs, input);
  if (contradiction)
    return {
      kind: 'ignore',
      host,
      reason: `ignored: contradicted by live state: ${contradiction}`,
    };
  if (rule.action === 'move_role') {
    const role = rule.role as string;
    const holds = Object.values(input.state.roles[role] ?? {}).includes(host);
    if (!holds)
      return {
        kind: 'ignore',
        host,
        role,
        reason: `stale: ${host} does not hold ${role} (holder: ${holderOf(input.state.roles, role) ?? 'none'})`,
      };
  }
  return {
    kind: 'drop',
    host,
    roles,
    rule,
    reason: `${alert.name} firing for ${host}: ${rule.action} ${roles.join(', ')}`,
  };
}

/** What the live observation says against the alert, or undefined when it confirms it. */
function contradicts(
  name: string,
  host: string,
  obs: HostObservation,
  input: AlertInput,
): string | undefined {
  const maxLagSeconds = input.config.monitor.max_lag / 1000;
  if (REPLICATION_ALERTS.has(name) && holderOf(input.state.roles, input.writerRole) === host) {
    return `${host} is the writer: its own replication is not held against it`;
  }
  switch (name) {
    case 'SwitchyardReplicationLagHigh': {
      if (!obs.reachable) return undefined;
      const lag = obs.heartbeatLagSeconds ?? obs.replication?.secondsBehindMaster ?? null;
      if (lag !== null && lag < maxLagSeconds)
        return `${host}'s current lag is ${lag}s, below max_lag ${maxLagSeconds}s`;
      return undefined;
    }
    case 'SwitchyardReplicationBroken':
      if (obs.reachable && obs.replication?.ioRunning && obs.replication.sqlRunning)
        return `${host}'s replication threads are both running`;
      return undefined;
    case 'SwitchyardHostDown':
      return obs.reachable ? `the manager reaches ${host}` : undefined;
    case 'SwitchyardWriterDown':
      if (obs.reachable) return `the manager reaches ${host}`;
      if (holderOf(input.state.roles, input.writerRole) !== host)
        return `${host} is not the writer`;
      return undefined;
    default:
      return undefined;
  }
}

/**
 * Alertmanager resends a group every group_interval/repeat_interval. An alert (fingerprint, or
 * name + labels; startsAt; status) that changed the cluster, or would have (planned), is not
 * handled again: a resend is answered "duplicate". Anything else (ignored as contradicted,
 * refused, deferred, failed) is evaluated afresh when it comes again, because the live state it
 * was checked against may have changed (a writer that answered then may be dead now). Bounded in
 * size and time; in memory, so after a restart a resend is evaluated once more, which is safe
 * because evaluation re-checks live state.
 */
export class HandledAlerts {
  private readonly handled = new Map<string, number>();

  constructor(
    private readonly ttlMs = 3_600_000,
    private readonly maxEntries = 10_000,
  ) {}

  static key(alert: IncomingAlert): string {
    const identity =
      alert.fingerprint ??
      `${alert.name}${JSON.stringify(Object.entries(alert.labels).sort(([a], [b]) => a.localeCompare(b)))}`;
    return `${identity}|${alert.startsAt}|${alert.status}`;
  }

  /** Epoch ms when this alert was acted on, if it was and that has not expired. */
  handledAt(alert: IncomingAlert, now: number): number | undefined {
    const key = HandledAlerts.key(alert);
    const at = this.handled.get(key);
    if (at !== undefined && now - at > this.ttlMs) {
      this.handled.delete(key);
      return undefined;
    }
    return at;
  }

  remember(alert: IncomingAlert, now: number): void {
    const key = HandledAlerts.key(alert);
    this.handled.delete(key);
    this.handled.set(key, now);
    while (this.handled.size > this.maxEntries) {
      const oldest = this.handled.keys().next().value;
      if (oldest === undefined) break;
      this.handled.delete(oldest);
    }
  }
}
