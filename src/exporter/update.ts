import type { SwitchyardMetrics } from './metrics.js';
import type { MonitorCycle } from '../domain/monitor-cycle.js';

/**
 * Copies the last cycle into the registry, so a scrape only reads memory and never waits on
 * MySQL. Values that are unknown this cycle (an unreachable host's lag) are removed rather
 * than left stale.
 */
export function updateMetrics(metrics: SwitchyardMetrics, cycle: MonitorCycle): void {
  let writable = 0;
  for (const observation of cycle.observations) {
    const host = { host: observation.host };
    metrics.hostUp.set(host, observation.reachable ? 1 : 0);
    const record = cycle.state.hosts[observation.host];
    if (record) metrics.setHostState(observation.host, record.state);
    const known = <T>(value: T | undefined | null, set: (value: T) => void, remove: () => void) =>
      value === undefined || value === null ? remove() : set(value);
    if (!observation.reachable) {
      for (const gauge of [
        metrics.readOnly,
        metrics.gtidStrictMode,
        metrics.uptime,
        metrics.ioRunning,
        metrics.sqlRunning,
        metrics.lag,
        metrics.secondsBehindMaster,
      ])
        gauge.remove(host);
      continue;
    }
    if (observation.readOnly === false) writable += 1;
    known(
      observation.readOnly,
      (value) => metrics.readOnly.set(host, value ? 1 : 0),
      () => metrics.readOnly.remove(host),
    );
    known(
      observation.gtidStrictMode,
      (value) => metrics.gtidStrictMode.set(host, value ? 1 : 0),
      () => metrics.gtidStrictMode.remove(host),
    );
    known(
      observation.uptimeSeconds,
      (value) => metrics.uptime.set(host, value),
      () => metrics.uptime.remove(host),
    );
    const replication = observation.replication;
    known(
      replication?.ioRunning,
      (value) => metrics.ioRunning.set(host, value ? 1 : 0),
      () => metrics.ioRunning.remove(host),
    );
    known(
      replication?.sqlRunning,
      (value) => metrics.sqlRunning.set(host, value ? 1 : 0),
      () => metrics.sqlRunning.remove(host),
    );
    known(
      replication?.secondsBehindMaster,
      (value) => metrics.secondsBehindMaster.set(host, value),
      () => metrics.secondsBehindMaster.remove(host),
    );
    known(
      observation.heartbeatLagSeconds,
      (value) => metrics.lag.set(host, value),
      () => metrics.lag.remove(host),
    );
  }
  metrics.writableHosts.set(writable);
}
