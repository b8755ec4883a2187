/**
 * Minimal MariaDB GTID position arithmetic, private to the engine until src/mysql/gtid.ts (the
 * actuator's parser) lands; the engine only reaches it through the `GtidOps` interface so the
 * swap is one line in engine.ts.
 *
 * A MariaDB position (`@@gtid_current_pos`, `Gtid_IO_Pos`) lists, per replication domain, the
 * last GTID `domain-server-seq`. With gtid_strict_mode, sequence numbers grow within a domain,
 * so "has everything the other has" is a per-domain comparison of sequence numbers.
 */
export interface GtidEntry {
  domain: number;
  server: number;
  seq: bigint;
}

export type GtidPosition = Map<number, GtidEntry>;

/** What the engine needs from a GTID implementation. Positions are the servers' text form. */
export interface GtidOps {
  /** true when `have` contains every transaction `other` has. */
  contains(have: string, other: string): boolean;
  /** The transactions of `other` that `have` lacks, as ranges "domain-server-from..to"; empty when none. */
  missing(have: string, other: string): string[];
  /** How many transactions of `other` `have` lacks (a lower bound when histories diverged). */
  missingCount(have: string, other: string): number;
  /** Per domain, the most advanced of the positions: what a host has received or applied. */
  merge(...positions: string[]): string;
}

export function parseGtidPosition(text: string): GtidPosition {
  const position: GtidPosition = new Map();
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const match = /^(\d+)-(\d+)-(\d+)$/.exec(item);
    if (!match) throw new Error(`not a MariaDB GTID: "${item}" (expected domain-server-seq)`);
    const entry: GtidEntry = {
      domain: Number(match[1]),
      server: Number(match[2]),
      seq: BigInt(match[3] as string),
    };
    const previous = position.get(entry.domain);
    if (!previous || previous.seq < entry.seq) position.set(entry.domain, entry);
  }
  return position;
}

export function formatGtidPosition(position: GtidPosition): string {
  return [...position.values()]
    .sort((a, b) => a.domain - b.domain)
    .map((entry) => `${entry.domain}-${entry.server}-${entry.seq}`)
    .join(',');
}

interface Gap {
  domain: number;
  server: number;
  from: bigint;
  to: bigint;
}

function gaps(have: GtidPosition, other: GtidPosition): Gap[] {
  const result: Gap[] = [];
  for (const theirs of other.values()) {
    const mine = have.get(theirs.domain);
    const mineSeq = mine?.seq ?? 0n;
    if (theirs.seq > mineSeq)
      result.push({
        domain: theirs.domain,
        server: theirs.server,
        from: mineSeq + 1n,
        to: theirs.seq,
      });
    // Same sequence number written by two servers: the histories diverged at the tip.
    else if (mine && theirs.seq === mineSeq && theirs.server !== mine.server)
      result.push({
        domain: theirs.domain,
        server: theirs.server,
        from: theirs.seq,
        to: theirs.seq,
      });
  }
  return result;
}

export const mariadbGtid: GtidOps = {
  contains(have, other) {
    return gaps(parseGtidPosition(have), parseGtidPosition(other)).length === 0;
  },
  missing(have, other) {
    return gaps(parseGtidPosition(have), parseGtidPosition(other)).map((gap) =>
      gap.from === gap.to
        ? `${gap.domain}-${gap.server}-${gap.to}`
        : `${gap.domain}-${gap.server}-${gap.from}..${gap.to}`,
    );
  },
  missingCount(have, other) {
    return Number(
      gaps(parseGtidPosition(have), parseGtidPosition(other)).reduce(
        (sum, gap) => sum + (gap.to - gap.from + 1n),
        0n,
      ),
    );
  },
  merge(...positions) {
    const merged: GtidPosition = new Map();
    for (const text of positions) {
      for (const entry of parseGtidPosition(text).values()) {
        const previous = merged.get(entry.domain);
        if (!previous || previous.seq < entry.seq) merged.set(entry.domain, entry);
      }
    }
    return formatGtidPosition(merged);
  },
};
