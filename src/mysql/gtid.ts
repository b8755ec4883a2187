/**
 * MariaDB GTID positions: a list of `domain-server-seq`, at most one per replication domain
 * (as in @@gtid_binlog_pos, @@gtid_slave_pos, @@gtid_current_pos, Gtid_IO_Pos).
 *
 * A position says "for each domain, everything up to and including this sequence number".
 * With gtid_strict_mode (which Switchyard requires) sequence numbers only grow within a domain,
 * so comparing two positions domain by domain tells which transactions one host has and the
 * other lacks. Two entries with the same sequence number but different server ids are two
 * different transactions: the hosts diverged, and neither contains the other.
 *
 * Sequence numbers are 64-bit in MariaDB, so they are bigints here.
 */
export interface Gtid {
  domain: number;
  server: number;
  seq: bigint;
}

/** Domain id -> the last GTID of that domain. */
export type GtidPosition = ReadonlyMap<number, Gtid>;

export class GtidParseError extends Error {
  override name = 'GtidParseError';
}

const UINT32_MAX = 4_294_967_295;
const UINT64_MAX = 18_446_744_073_709_551_615n;
const ENTRY = /^(\d{1,10})-(\d{1,10})-(\d{1,20})$/;

export function parseGtid(text: string): Gtid {
  const match = ENTRY.exec(text.trim());
  if (!match) throw new GtidParseError(`"${text}" is not a MariaDB GTID (domain-server-seq)`);
  const domain = Number(match[1]);
  const server = Number(match[2]);
  const seq = BigInt(match[3] as string);
  if (domain > UINT32_MAX || server > UINT32_MAX || seq > UINT64_MAX)
    throw new GtidParseError(`"${text}" has a number out of range`);
  return { domain, server, seq };
}

export function formatGtid(gtid: Gtid): string {
  return `${gtid.domain}-${gtid.server}-${gtid.seq}`;
}

/**
 * Parses "0-1-10,1-2-5" (whitespace and newlines tolerated, empty string = empty position).
 * A domain listed twice is an error: a position has one entry per domain, and guessing which
 * entry counts could hide missing transactions.
 */
export function parsePosition(text: string | null | undefined): GtidPosition {
  const position = new Map<number, Gtid>();
  if (text === null || text === undefined) return position;
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const gtid = parseGtid(part);
    if (position.has(gtid.domain))
      throw new GtidParseError(`domain ${gtid.domain} appears twice in "${text.trim()}"`);
    position.set(gtid.domain, gtid);
  }
  return position;
}

/**
 * @@gtid_binlog_state: the last GTID per domain AND server_id (a position keeps one per domain),
 * keyed "domain-server". Tolerant where parsePosition is strict: an entry listed twice keeps the
 * higher sequence, and a part that is no GTID is skipped, so errant detection names what it can
 * read rather than nothing.
 */
export function parseBinlogState(text: string | null | undefined): Map<string, Gtid> {
  const state = new Map<string, Gtid>();
  for (const part of (text ?? '').split(',')) {
    let gtid: Gtid;
    try {
      gtid = parseGtid(part);
    } catch {
      continue;
    }
    const key = `${gtid.domain}-${gtid.server}`;
    const previous = state.get(key);
    if (!previous || previous.seq < gtid.seq) state.set(key, gtid);
  }
  return state;
}

/** Canonical text: sorted by domain, comma-separated, as MariaDB accepts it back. */
export function formatPosition(position: GtidPosition): string {
  return [...position.values()]
    .sort((a, b) => a.domain - b.domain)
    .map(formatGtid)
    .join(',');
}

/** Accepts text or a parsed position, so callers can pass server variables straight in. */
function asPosition(value: GtidPosition | string): GtidPosition {
  return typeof value === 'string' ? parsePosition(value) : value;
}

/** Transactions one position has and another lacks, in one domain. */
export interface MissingRange {
  domain: number;
  /** The last GTID the position that has them holds in this domain. */
  have: Gtid;
  /** What the other position holds in this domain; undefined when it has nothing there. */
  other?: Gtid;
  /**
   * Sequence numbers (other.seq, have.seq] are missing. When `diverged` is true the two
   * entries have the same sequence number but different servers, so at least `have` itself
   * is missing and the histories may differ further back.
   */
  diverged: boolean;
}

/**
 * Transactions in `a` that are missing from `b`, per domain. This is the errant-GTID check:
 * a replica may only be pointed at a master for which missingFrom(replica, master) is empty.
 */
export function missingFrom(a: GtidPosition | string, b: GtidPosition | string): MissingRange[] {
  const left = asPosition(a);
  const right = asPosition(b);
  const missing: MissingRange[] = [];
  for (const have of [...left.values()].sort((x, y) => x.domain - y.domain)) {
    const other = right.get(have.domain);
    if (other === undefined) {
      if (have.seq > 0n) missing.push({ domain: have.domain, have, diverged: false });
    } else if (other.seq < have.seq) {
      missing.push({ domain: have.domain, have, other, diverged: false });
    } else if (other.seq === have.seq && other.server !== have.server) {
      missing.push({ domain: have.domain, have, other, diverged: true });
    }
  }
  return missing;
}

/** One line per domain, naming the GTIDs, for refusal messages and logs. */
export function describeMissing(ranges: MissingRange[]): string {
  return ranges
    .map((range) => {
      const have = formatGtid(range.have);
      if (range.other === undefined)
        return `domain ${range.domain}: up to ${have} (the other side has nothing in this domain)`;
      const other = formatGtid(range.other);
      if (range.diverged)
        return `domain ${range.domain}: ${have} differs from ${other} (same sequence, different server: diverged)`;
      const count = range.have.seq - range.other.seq;
      return `domain ${range.domain}: ${count} transaction(s) after ${other}, up to ${have}`;
    })
    .join('; ');
}

/** True when `a` has every transaction `b` has. */
export function contains(a: GtidPosition | string, b: GtidPosition | string): boolean {
  return missingFrom(b, a).length === 0;
}

/** What to do when two positions hold different GTIDs with the same sequence in one domain. */
type OnDivergence = 'throw' | 'keep-first';

function mergeInto(
  positions: Array<GtidPosition | string>,
  onDivergence: OnDivergence,
): GtidPosition {
  const merged = new Map<number, Gtid>();
  for (const value of positions) {
    for (const gtid of asPosition(value).values()) {
      const current = merged.get(gtid.domain);
      if (current === undefined || current.seq < gtid.seq) merged.set(gtid.domain, gtid);
      else if (
        current.seq === gtid.seq &&
        current.server !== gtid.server &&
        onDivergence === 'throw'
      ) {
        throw new GtidParseError(
          `cannot merge ${formatGtid(current)} and ${formatGtid(gtid)}: same sequence, different server (diverged)`,
        );
      }
    }
  }
  return merged;
}

/**
 * Per domain, the entry with the higher sequence number. Used to combine a host's
 * @@gtid_binlog_pos and @@gtid_slave_pos into "everything this host has". Entries with the same
 * sequence and different servers are a divergence: throws, because no merge is honest.
 */
export function mergePositions(...positions: Array<GtidPosition | string>): GtidPosition {
  return mergeInto(positions, 'throw');
}

/**
 * mergePositions for callers that must not throw on divergence: where two positions diverged
 * in a domain, the entry listed first is kept. The divergence is not hidden from them: comparing
 * the result with the other host (missingFrom, or GtidOps.missing) still names it.
 */
export function mergePositionsKeepingFirst(
  ...positions: Array<GtidPosition | string>
): GtidPosition {
  return mergeInto(positions, 'keep-first');
}

// --- Ranges, lists and GTIDs inside other text: the only other GTID text the project reads ---

/**
 * Transactions of one server in one domain, sequence numbers `from` to `to` inclusive, as the
 * engine names errant and missing transactions: "domain-server-seq" for one, else
 * "domain-server-from..to".
 */
export interface GtidRange {
  domain: number;
  server: number;
  from: bigint;
  to: bigint;
}

const RANGE = /^(\d+-\d+-\d+)(?:\.\.(\d{1,20}))?$/;

export function formatRange(range: GtidRange): string {
  const prefix = `${range.domain}-${range.server}`;
  return range.from === range.to ? `${prefix}-${range.to}` : `${prefix}-${range.from}..${range.to}`;
}

/** Parses "0-1-101..103" or "0-1-100"; throws GtidParseError on anything else. */
export function parseRange(text: string): GtidRange {
  const match = RANGE.exec(text);
  if (!match) throw new GtidParseError(`"${text}" is not a GTID range (domain-server-seq[..seq])`);
  const first = parseGtid(match[1] as string);
  const to = match[2] === undefined ? first.seq : BigInt(match[2]);
  if (to > UINT64_MAX) throw new GtidParseError(`"${text}" has a number out of range`);
  return { domain: first.domain, server: first.server, from: first.seq, to };
}

/** How many transactions ranges like "0-1-101..103" or "0-1-100" name; what is no range counts none. */
export function countTransactions(ranges: string[]): number {
  let count = 0;
  for (const item of ranges) {
    let range: GtidRange;
    try {
      range = parseRange(item);
    } catch {
      continue;
    }
    count += Number(range.to - range.from + 1n);
  }
  return count;
}

/**
 * True when `text` is a non-empty list of GTIDs as a server or a backup writes a position
 * ("0-1-10" or "0-1-10, 1-2-5"): the check for positions that arrive from outside (an agent's
 * request, a backup's metadata) before they go into SQL or a catalogue.
 */
export function isPositionText(text: string): boolean {
  return text.split(',').every((part, index) => {
    const entry = index === 0 ? part : part.trimStart();
    if (entry === '' || entry !== entry.trim()) return false;
    try {
      parseGtid(entry);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The GTIDs written inside other text, in order: the Info column of SHOW BINLOG EVENTS
 * ("BEGIN GTID 0-1-5", "[0-1-4,0-2-3]"), or mariadb-binlog's output when `after` is "GTID "
 * (only the GTIDs that follow that word). Numbers out of range are not GTIDs and are skipped.
 */
export function gtidsIn(text: string, after = ''): Gtid[] {
  const prefix = after.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const found: Gtid[] = [];
  for (const match of text.matchAll(new RegExp(`\\b${prefix}(\\d+-\\d+-\\d+)\\b`, 'g'))) {
    try {
      found.push(parseGtid(match[1] as string));
    } catch {
      continue;
    }
  }
  return found;
}

// --- The engine's view: text positions in, text ranges out, divergence reported, never thrown ---

/**
 * What the engine needs from a GTID implementation, positions in the servers' text form. An
 * interface so engine tests can hand in their own; `mariadbGtid` is the real one.
 */
export interface GtidOps {
  /** true when `have` contains every transaction `other` has. */
  contains(have: string, other: string): boolean;
  /** The transactions of `other` that `have` lacks, as ranges "domain-server-from..to"; empty when none. */
  missing(have: string, other: string): string[];
  /** How many transactions of `other` `have` lacks (a lower bound when histories diverged). */
  missingCount(have: string, other: string): number;
  /** Per domain, the most advanced of the positions (the first listed where they diverged). */
  merge(...positions: string[]): string;
}

/** The sequence numbers a range names; a divergence names at least the differing GTID itself. */
function rangeBounds(range: MissingRange): { from: bigint; to: bigint } {
  const to = range.have.seq;
  return { from: range.diverged ? to : (range.other?.seq ?? 0n) + 1n, to };
}

function rangeText(range: MissingRange): string {
  const { from, to } = rangeBounds(range);
  return formatRange({ domain: range.domain, server: range.have.server, from, to });
}

export const mariadbGtid: GtidOps = {
  contains: (have, other) => contains(have, other),
  missing: (have, other) => missingFrom(other, have).map(rangeText),
  missingCount: (have, other) =>
    Number(
      missingFrom(other, have).reduce((sum, range) => {
        const { from, to } = rangeBounds(range);
        return sum + (to - from + 1n);
      }, 0n),
    ),
  merge: (...positions) => formatPosition(mergePositionsKeepingFirst(...positions)),
};
