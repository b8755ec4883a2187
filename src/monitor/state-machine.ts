import type { Config } from '../config/schema.js';
import type { HostRecord } from '../domain/cluster-state.js';
import type { HostState } from '../domain/host-state.js';
import type { HostObservation } from '../domain/observation.js';
import { formatDuration } from '../config/duration.js';
import { checkRestart, processGoneAt } from './restart.js';

export interface StateContext {
  /** The host holds the writer role: its replication (from the passive master) is not held against it. */
  isActiveWriter: boolean;
  /**
   * Whether the host's replication master is ONLINE and answered this cycle (undefined: no
   * master or unknown, taken as ONLINE). As in MMM, a host goes REPLICATION_FAIL or
   * REPLICATION_DELAY only while its master is ONLINE: the replicas of a dead writer keep their
   * reader roles, and a master's death is not counted against them.
   */
  master?: { name: string; online: boolean };
  monitor: Config['monitor'];
  now: number;
}

export interface Transition {
  from: HostState;
  to: HostState;
  reason: string;
}

/** A host never seen before: no outage to recover from, so its first healthy check makes it ONLINE. */
export function initialHostRecord(now: number): HostRecord {
  return {
    state: 'AWAITING_RECOVERY',
    reason: 'no history yet',
    since: now,
    failures: 0,
    flaps: [],
    fresh: true,
  };
}

/** ONLINE, REPLICATION_DELAY or REPLICATION_FAIL from a reachable host's replication. */
export function healthState(
  observation: HostObservation,
  context: StateContext,
): { state: HostState; reason: string } {
  if (context.isActiveWriter)
    return {
      state: 'ONLINE',
      reason: 'active writer (its own replication is not held against it)',
    };
  const replication = observation.replication;
  if (!replication) return { state: 'ONLINE', reason: 'healthy (no replication configured)' };
  const health = replicationHealth(observation, replication, context);
  if (health.state !== 'ONLINE' && context.master && !context.master.online) {
    return {
      state: 'ONLINE',
      reason: `its master ${context.master.name} is not ONLINE: its replication is not held against it (${health.reason})`,
    };
  }
  return health;
}

function replicationHealth(
  observation: HostObservation,
  replication: NonNullable<HostObservation['replication']>,
  context: StateContext,
): { state: HostState; reason: string } {
  // An IO thread that is connecting without an error was just (re)started, e.g. by a repoint.
  const starting =
    !replication.ioRunning &&
    /^connecting$/i.test(replication.ioState) &&
    replication.lastIoError === '';
  // Cannot receive (IO thread down) or cannot apply because of an error: broken.
  if (
    (!replication.ioRunning && !starting) ||
    (!replication.sqlRunning && replication.lastSqlError !== '')
  ) {
    const threads = `IO ${replication.ioRunning ? 'running' : replication.ioState || 'stopped'}, SQL ${replication.sqlRunning ? 'running' : 'stopped'}`;
    const error = replication.lastIoError || replication.lastSqlError;
    return {
      state: 'REPLICATION_FAIL',
      reason: `replication broken: ${threads}${error ? ` (${error})` : ''}`,
    };
  }
  // A cleanly stopped SQL thread still receives everything and catches up when restarted: it is
  // a delay, judged by the measured lag (unknown lag counts as too much).
  const lag = observation.heartbeatLagSeconds ?? replication.secondsBehindMaster;
  if (!replication.sqlRunning && (lag === null || lag === undefined)) {
    return { state: 'REPLICATION_DELAY', reason: 'SQL thread stopped (no error) and lag unknown' };
  }
  if (lag !== null && lag !== undefined && lag * 1000 > context.monitor.max_lag) {
    return {
      state: 'REPLICATION_DELAY',
      reason: `lag ${lag.toFixed(3)} s above max_lag ${formatDuration(context.monitor.max_lag)}${replication.sqlRunning ? '' : ' (SQL thread stopped)'}`,
    };
  }
  return {
    state: 'ONLINE',
    reason: lag === null || lag === undefined ? 'healthy' : `healthy (lag ${lag.toFixed(3)} s)`,
  };
}

const HEALTH_STATES: ReadonlySet<HostState> = new Set([
  'ONLINE',
  'REPLICATION_DELAY',
  'REPLICATION_FAIL',
]);

/**
 * One host, one observation: the MMM rules of docs/design.md "Host states". Pure: the caller
 * logs and persists. Only the operator leaves ADMIN_OFFLINE; a host that restarted, came back
 * from HARD_OFFLINE or flapped waits in AWAITING_RECOVERY (held when it restarted or flapped).
 */
export function nextHostRecord(
  record: HostRecord,
  observation: HostObservation,
  context: StateContext,
): { record: HostRecord; transition?: Transition } {
  const { monitor, now } = context;
  const next: HostRecord = {
    ...record,
    flaps: record.flaps.filter((at) => now - at < monitor.flap.window),
  };
  let to: HostState = record.state;
  let reason = record.reason;
  let restartedNow = false;

  if (!observation.reachable) {
    next.failures = record.failures + 1;
    const goneAt = processGoneAt(record, observation);
    if (goneAt !== undefined) next.processGoneAt = goneAt;
    if (
      record.state !== 'ADMIN_OFFLINE' &&
      record.state !== 'HARD_OFFLINE' &&
      next.failures >= monitor.failures_before_down
    ) {
      to = 'HARD_OFFLINE';
      reason = `unreachable for ${next.failures} consecutive checks: ${observation.error ?? 'no answer'}`;
      next.downSince = now;
    }
  } else {
    next.failures = 0;
    const check = checkRestart(record, observation);
    const restarted = check.evidence !== undefined;
    if (observation.uptimeSeconds !== undefined) next.lastUptimeSeconds = observation.uptimeSeconds;
    if (check.lastConnectionId !== undefined) next.lastConnectionId = check.lastConnectionId;
    if (check.bootedBy !== undefined) next.bootedBy = check.bootedBy;
    if (check.processGoneAt !== undefined) next.processGoneAt = check.processGoneAt;
    else delete next.processGoneAt;
    if (record.state === 'ADMIN_OFFLINE') {
      // only set-online leaves it
    } else if (restarted && !record.fresh) {
      to = 'AWAITING_RECOVERY';
      reason = `restarted (${check.evidence}): waiting for set-online`;
      next.held = 'restarted';
      restartedNow = true;
    } else if (record.state === 'HARD_OFFLINE') {
      const outage = now - (record.downSince ?? now);
      to = 'AWAITING_RECOVERY';
      reason = `reachable again after ${formatDuration(Math.round(outage / 1000) * 1000)} HARD_OFFLINE`;
      next.lastOutageMs = outage;
    } else if (record.state === 'AWAITING_RECOVERY') {
      const autoAfter = monitor.auto_set_online;
      if (record.fresh && !record.held) {
        ({ state: to, reason } = healthState(observation, context));
      } else if (
        autoAfter > 0 &&
        !record.held &&
        (record.lastOutageMs ?? Number.POSITIVE_INFINITY) < autoAfter &&
        now - record.since >= autoAfter
      ) {
        const health = healthState(observation, context);
        to = health.state;
        reason = `auto_set_online after ${formatDuration(autoAfter)} (short outage, no restart): ${health.reason}`;
      }
    } else if (HEALTH_STATES.has(record.state)) {
      ({ state: to, reason } = healthState(observation, context));
    }
  }

  if (to !== record.state || reason !== record.reason) next.reason = reason;
  if (to === record.state) return { record: next };

  // Only the host's own failures count towards flapping: it became unreachable, restarted, or its
  // replication broke while its master was ONLINE. Lag, a dead master and Switchyard's own
  // repoints and role moves do not.
  const ownFailure = to === 'HARD_OFFLINE' || to === 'REPLICATION_FAIL' || restartedNow;
  if (record.state === 'ONLINE' && ownFailure) {
    next.flaps.push(now);
    if (next.flaps.length >= monitor.flap.count && !next.held) {
      next.held = `flapping: ${next.flaps.length} state losses within ${formatDuration(monitor.flap.window)}`;
      if (to !== 'HARD_OFFLINE') {
        to = 'AWAITING_RECOVERY';
        next.reason = `${next.held}: waiting for set-online`;
      }
    }
  }
  if (to !== 'AWAITING_RECOVERY') delete next.fresh;
  if (to === 'ONLINE' || to === 'REPLICATION_DELAY' || to === 'REPLICATION_FAIL')
    delete next.downSince;
  next.state = to;
  next.since = now;
  return { record: next, transition: { from: record.state, to, reason: next.reason } };
}

/** Operator: take a host in. The next cycle derives REPLICATION_* from its replication if needed. */
export function setOnline(
  record: HostRecord,
  now: number,
): { record: HostRecord; transition?: Transition } {
  const next: HostRecord = {
    ...record,
    state: 'ONLINE',
    reason: 'set online by the operator',
    since: now,
    failures: 0,
    flaps: [],
  };
  delete next.held;
  delete next.fresh;
  delete next.downSince;
  delete next.lastOutageMs;
  return {
    record: next,
    transition:
      record.state === 'ONLINE'
        ? undefined
        : { from: record.state, to: 'ONLINE', reason: next.reason },
  };
}

/** Operator: take a host out; only set-online brings it back. */
export function setOffline(
  record: HostRecord,
  now: number,
): { record: HostRecord; transition?: Transition } {
  const next: HostRecord = {
    ...record,
    state: 'ADMIN_OFFLINE',
    reason: 'set offline by the operator',
    since: now,
  };
  return {
    record: next,
    transition:
      record.state === 'ADMIN_OFFLINE'
        ? undefined
        : { from: record.state, to: 'ADMIN_OFFLINE', reason: next.reason },
  };
}
