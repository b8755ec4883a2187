/**
 * Errant transactions over the engine's state: what a host has that the writer lacks, from the
 * latest observations (reported once seen in two cycles) or from live reads (for decisions an
 * operator waits on). The arithmetic is errant.ts; this keeps the memory between cycles.
 */
import type { ClusterState } from '../domain/cluster-state.js';
import type { GtidView } from './context.js';
import type { EngineCore } from './core.js';
import { countTransactions } from '../mysql/gtid.js';
import { errantTransactions, gtidViewOf } from './errant.js';
import { forgetAcceptedErrant, holdForErrant, isErrantHold } from './errant-holds.js';
import { note } from './operation.js';
import { holderOf } from './roles.js';

/** Transactions `host` has that `writer` lacks, from the latest observations ([] when either is unknown). */
export function errantOf(core: EngineCore, host: string, writer: string): string[] {
  const hostView = gtidViewOf(
    core.observations.get(host),
    core.gtid.merge,
    core.serverIds.get(host),
  );
  const writerView = gtidViewOf(
    core.observations.get(writer),
    core.gtid.merge,
    core.serverIds.get(writer),
  );
  if (!hostView || !writerView) return [];
  return errantTransactions({
    host: hostView,
    writer: writerView,
    gtid: core.gtid,
    promotion: promotionFor(core, host, writer),
  });
}

/**
 * Errant transactions from live reads, for decisions an operator waits on: the host is read
 * first, then the writer, so whatever the host received from the writer is in the writer's
 * later read. Unreadable: say so; never guess.
 */
export async function liveErrant(
  core: EngineCore,
  host: string,
  writer: string,
): Promise<{ ok: true; errant: string[] } | { ok: false; reason: string }> {
  let hostView: GtidView;
  try {
    hostView = await core.options.positions.gtidView(host);
  } catch (error) {
    return {
      ok: false,
      reason: `cannot read ${host}'s GTID state live (${(error as Error).message}); it is needed to rule out errant transactions: try again`,
    };
  }
  let writerView: GtidView;
  try {
    writerView = await core.options.positions.gtidView(writer);
  } catch (error) {
    return {
      ok: false,
      reason: `cannot read the writer ${writer}'s GTID state live (${(error as Error).message}); it is needed to rule out errant transactions on ${host}: try again`,
    };
  }
  return {
    ok: true,
    errant: errantTransactions({
      host: hostView,
      writer: writerView,
      gtid: core.gtid,
      promotion: promotionFor(core, host, writer),
    }),
  };
}

function promotionFor(
  core: EngineCore,
  host: string,
  writer: string,
): ClusterState['lastPromotion'] {
  const promotion = core.state.lastPromotion;
  return promotion && promotion.from === host && promotion.host === writer ? promotion : undefined;
}

/** Hosts whose transactions the writer lacked, confirmed in two cycles: never promoted. */
export function divergedHosts(core: EngineCore): string[] {
  return [...core.errantConfirmed]
    .filter(([, signature]) => signature !== '')
    .map(([host]) => host);
}

/**
 * After a failover the old writer may come back with writes that never reached the new one.
 * Reported (journal + switchyard_errant_transactions) once seen in two cycles in a row, so a
 * replica sampled a moment after its master does not raise a false alarm.
 */
export function reportErrant(core: EngineCore): void {
  const writer = holderOf(core.state.roles, core.writerRole);
  for (const host of Object.keys(core.config.hosts)) {
    if (!writer || host === writer) {
      core.options.metrics?.errantTransactions.set({ host }, 0);
      core.errantSeen.delete(host);
      continue;
    }
    const writerObs = core.observations.get(writer);
    const hostObs = core.observations.get(host);
    if (!writerObs?.reachable || !hostObs?.reachable) continue; // unknown: keep the last report
    const missing = errantOf(core, host, writer);
    const signature = missing.join(',');
    const previous = core.errantSeen.get(host);
    core.errantSeen.set(host, signature);
    if (signature !== previous) continue;
    const confirmed = core.errantConfirmed.get(host);
    if (signature === confirmed) {
      // The monitor replaces a hold when the host restarts or flaps (held: restarted): the errant
      // hold, which only the operator or a rejoin lifts, is put back.
      if (missing.length > 0 && !isErrantHold(core.state.hosts[host]?.held))
        holdForErrant(core, host, writer, missing);
      continue;
    }
    core.errantConfirmed.set(host, signature);
    const count = countTransactions(missing);
    core.options.metrics?.errantTransactions.set({ host }, count);
    if (missing.length > 0) {
      note(core.ctxBase(), {
        phase: 'note',
        event: 'errant.detected',
        host,
        reason: `${host} has ${count} transaction(s) the writer ${writer} lacks: ${missing.join(', ')}`,
        inputs: { writer, missing },
        level: 'warn',
      });
      holdForErrant(core, host, writer, missing);
    } else if (confirmed !== undefined) {
      forgetAcceptedErrant(core, host);
      const stillHeld = isErrantHold(core.state.hosts[host]?.held);
      note(core.ctxBase(), {
        phase: 'note',
        event: 'errant.cleared',
        host,
        reason: `${host} no longer has transactions the writer ${writer} lacks${stillHeld ? ': it stays held until set-online' : ''}`,
      });
    }
  }
}
