import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { GtidOps } from './gtid-position.js';
import { knownPosition } from './topology.js';

export interface ErrantInput {
  host: string;
  writer: string;
  observations: ReadonlyMap<string, HostObservation>;
  gtid: GtidOps;
  promotion?: ClusterState['lastPromotion'];
  /** The host's server_id (remembered while it was unreachable). */
  hostServerId?: number;
}

/**
 * Transactions `host` has that the writer lacks, as ranges "domain-server-from..to". Empty when
 * either is unreachable (unknown is not errant). Two sources:
 * - a plain per-domain comparison (the host is ahead of the writer);
 * - the promotion point of the last failover: positions hold only the last GTID per domain, so
 *   once the new writer has written more than the old one lost, a comparison sees nothing; but
 *   whatever the old writer has beyond the promotion point under its own server_id never
 *   reached the new writer.
 */
export function errantTransactions(input: ErrantInput): string[] {
  const hostObs = input.observations.get(input.host);
  const writerObs = input.observations.get(input.writer);
  if (!hostObs?.reachable || !writerObs?.reachable || !hostObs.gtid || !writerObs.gtid) return [];
  const hostKnown = knownPosition(hostObs, input.gtid.merge) as string;
  const missing = input.gtid.missing(knownPosition(writerObs, input.gtid.merge) as string, hostKnown);
  if (missing.length > 0) return missing;
  const promotion = input.promotion;
  if (!promotion || promotion.from !== input.host || promotion.host !== input.writer || input.hostServerId === undefined) return [];
  const result: string[] = [];
  for (const part of hostKnown.split(',')) {
    const [domain, server, seq] = part.trim().split('-');
    if (domain === undefined || server === undefined || seq === undefined || Number(server) !== input.hostServerId) continue;
    const promotedAt = promotion.position
      .split(',')
      .map((item) => item.trim().split('-'))
      .find((item) => item[0] === domain);
    const base = BigInt(promotedAt?.[2] ?? '0');
    if (BigInt(seq) > base) result.push(BigInt(seq) === base + 1n ? `${domain}-${server}-${seq}` : `${domain}-${server}-${base + 1n}..${seq}`);
  }
  return result;
}

/** How many transactions ranges like "0-1-101..103" or "0-1-100" name. */
export function countTransactions(ranges: string[]): number {
  let count = 0;
  for (const item of ranges) {
    const match = /-(\d+)(?:\.\.(\d+))?$/.exec(item);
    if (!match) continue;
    const from = BigInt(match[1] as string);
    count += match[2] === undefined ? 1 : Number(BigInt(match[2]) - from + 1n);
  }
  return count;
}
