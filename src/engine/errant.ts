import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { GtidView } from './context.js';
import {
  formatRange,
  parseBinlogState,
  parseRange,
  type Gtid,
  type GtidOps,
} from '../mysql/gtid.js';

export type { GtidView };
import { knownPosition } from './topology.js';

export interface ErrantInput {
  host: GtidView;
  writer: GtidView;
  gtid: GtidOps;
  /**
   * The last failover's promotion point, when `host` is the writer it replaced: it only narrows
   * which of the host's transactions are named (those after the point); it never adds any.
   */
  promotion?: ClusterState['lastPromotion'];
}

function domainSeq(position: string | undefined, domain: number): Gtid | undefined {
  return [...parseBinlogState(position).values()].find((pair) => pair.domain === domain);
}

/**
 * Transactions `host` has that the writer lacks, as ranges "domain-server-from..to" (one GTID
 * "domain-server-seq" when the lower bound is unknown: at least that one).
 *
 * Compared per domain AND server_id (@@gtid_binlog_state): a MariaDB position keeps one GTID per
 * domain, so once the new writer wrote more than the old one lost, a per-domain comparison sees
 * nothing, and while the writer takes writes a replica sampled a moment later looks "ahead". Per
 * server it is exact: whatever the host has under some server_id beyond what the writer has
 * under that server_id never reached the writer. The writer's own server_id is skipped: the
 * writer has every transaction it wrote itself, so a host that shows more of them was simply
 * read a moment later than the writer.
 */
export function errantTransactions(input: ErrantInput): string[] {
  const { host, writer } = input;
  if (!host.binlogState || !writer.binlogState) return fallbackErrant(input);
  const writerPairs = parseBinlogState(writer.binlogState);
  const result: string[] = [];
  for (const pair of parseBinlogState(host.binlogState).values()) {
    if (writer.serverId !== undefined && pair.server === writer.serverId) continue;
    const writerSeq = writerPairs.get(`${pair.domain}-${pair.server}`)?.seq;
    if (writerSeq !== undefined && writerSeq >= pair.seq) continue;
    // A writer without log_slave_updates keeps others' transactions out of its binlog state;
    // its applied position still shows the last one per domain.
    const applied = domainSeq(writer.known, pair.domain);
    if (applied && applied.server === pair.server && applied.seq >= pair.seq) continue;
    const bounds: bigint[] = [];
    if (writerSeq !== undefined) bounds.push(writerSeq + 1n);
    const promoted = input.promotion ? domainSeq(input.promotion.position, pair.domain) : undefined;
    if (promoted && promoted.seq < pair.seq) bounds.push(promoted.seq + 1n);
    const from = bounds.length > 0 ? bounds.reduce((a, b) => (a > b ? a : b)) : pair.seq;
    result.push(formatRange({ domain: pair.domain, server: pair.server, from, to: pair.seq }));
  }
  return result;
}

/** Without binlog states (an older observation): per domain, never counting the writer's own. */
function fallbackErrant(input: ErrantInput): string[] {
  const missing = input.gtid.missing(input.writer.known, input.host.known);
  return missing.filter((range) => {
    const server = parseRange(range).server;
    return input.writer.serverId === undefined || server !== input.writer.serverId;
  });
}

/** The errant-detection view of an observation; undefined when the host is not reachable. */
export function gtidViewOf(
  obs: HostObservation | undefined,
  merge: GtidOps['merge'],
  rememberedServerId?: number,
): GtidView | undefined {
  if (!obs?.reachable || !obs.gtid) return undefined;
  return {
    binlogState: obs.gtid.binlogState,
    known: knownPosition(obs, merge) ?? '',
    serverId: obs.serverId ?? rememberedServerId,
  };
}
