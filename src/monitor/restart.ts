/**
 * Did the server restart since the last check? A restarted host is held for the operator (MMM's
 * rule), so a miss here lets a host that crashed, or was killed and started again, back into
 * service by itself. Four pieces of evidence, any one of which is enough:
 *
 * - its uptime went backwards;
 * - a fresh login's connection id went backwards (ids start again from 1 after a restart);
 * - it started later than it was known to have started (its own clock minus its uptime);
 * - its process was seen gone (connect refused or reset by the host, or the old writer's agent
 *   proved no server process running) and its uptime now does not reach back before that.
 *
 * The first two fail for a server that lived only seconds: its uptime before and after can both
 * read 1 s, and by the manager's first fresh login after the restart, replicas, agents and
 * clients may have pushed the ids past the old one. That is a crash loop, or a kill -9 and a
 * restart soon after a first one: seen in the repeated-faults test, where a writer restarted
 * twice within seconds came back ONLINE. The last two do not depend on how long it lived.
 */
import type { HostRecord } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';

/**
 * Uptime is whole seconds, so one reading dates the start within a second; the bound also covers
 * the few milliseconds between reading the server's clock and its uptime.
 */
const UPTIME_RESOLUTION_MS = 1000;
const BOOT_MARGIN_MS = 500;
/**
 * A server that answers again after its process was seen gone did not restart only if its uptime
 * reaches back before that by more than this: the check's own latency, the uptime's resolution,
 * and the clocks of two managers (several managers share the record).
 */
const PREDATES_GONE_MS = 2000;

export interface RestartCheck {
  /** Why the server is taken for restarted; undefined when nothing says so. */
  evidence?: string;
  /** The record's next bootedBy. */
  bootedBy?: number;
  /** The record's next lastConnectionId. */
  lastConnectionId?: number;
  /** The record's next processGoneAt: kept only while the observation predates it. */
  processGoneAt?: number;
}

/** A reachable host's observation against its record. Pure. */
export function checkRestart(record: HostRecord, observation: HostObservation): RestartCheck {
  const evidence: string[] = [];
  const uptime = observation.uptimeSeconds;
  if (
    uptime !== undefined &&
    record.lastUptimeSeconds !== undefined &&
    uptime < record.lastUptimeSeconds
  )
    evidence.push(`uptime ${record.lastUptimeSeconds} s -> ${uptime} s`);

  // Only a fresh login's id counts: a kept check connection's is as old as its login, and any
  // manager's newer login may be the one saved (several managers).
  const freshId = observation.connectionFresh !== false ? observation.connectionId : undefined;
  if (
    freshId !== undefined &&
    record.lastConnectionId !== undefined &&
    freshId < record.lastConnectionId
  )
    evidence.push(`connection id ${record.lastConnectionId} -> ${freshId}`);

  const startedBy =
    observation.serverTimeMs !== undefined && uptime !== undefined && Number.isFinite(uptime)
      ? observation.serverTimeMs - uptime * 1000
      : undefined;
  if (startedBy !== undefined && record.bootedBy !== undefined) {
    const startedAfter = startedBy - UPTIME_RESOLUTION_MS;
    if (startedAfter > record.bootedBy + BOOT_MARGIN_MS)
      evidence.push(
        `started ${seconds(startedAfter - record.bootedBy)} s or more after its known start`,
      );
  }

  // An observation from before the process was known gone (the engine learns it from the old
  // writer's agent, possibly after this cycle's checks ran) says nothing about it.
  const goneBefore =
    record.processGoneAt !== undefined && observation.at >= record.processGoneAt
      ? record.processGoneAt
      : undefined;
  if (goneBefore !== undefined && uptime !== undefined) {
    const sinceGone = observation.at - goneBefore;
    if (uptime * 1000 < sinceGone + PREDATES_GONE_MS)
      evidence.push(
        `its server process was known gone ${seconds(sinceGone)} s ago (port closed, or its agent said so) and it has been up ${uptime} s`,
      );
  }

  const restarted = evidence.length > 0;
  return {
    evidence: restarted ? evidence.join(', ') : undefined,
    // The tightest bound seen while the server runs; a restart starts the bound again.
    bootedBy:
      startedBy === undefined
        ? record.bootedBy
        : restarted || record.bootedBy === undefined
          ? startedBy
          : Math.min(record.bootedBy, startedBy),
    lastConnectionId: freshId ?? record.lastConnectionId,
    processGoneAt: goneBefore === undefined ? record.processGoneAt : undefined,
  };
}

/** An unreachable host: remembers when its process was first seen gone. */
export function processGoneAt(
  record: HostRecord,
  observation: HostObservation,
): number | undefined {
  if (record.processGoneAt !== undefined) return record.processGoneAt;
  return observation.refusal !== undefined ? observation.at : undefined;
}

const seconds = (ms: number) => (Math.max(0, ms) / 1000).toFixed(1);
