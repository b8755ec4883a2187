/**
 * Which backups of one host retention keeps and which it removes (backup.retention). Pure: the
 * callers read the catalogue, pass it in, and delete what the plan names.
 *
 * - Full backups count, newest first; the newest `keepFull` are kept, and of those any whose chain
 *   ended (its newest member was taken) longer than `maxAgeMs` ago is removed too.
 * - The newest restorable full backup is always kept, whatever the policy says: retention must
 *   never leave a host with nothing to restore from.
 * - An incremental lives and dies with the full backup its chain starts from: removing the full
 *   would make every incremental on top of it useless, keeping the full alone would keep less than
 *   the operator asked for.
 * - A chain any member of which is in use (a restore or clone streams or prepares it) is kept.
 * - An incremental whose chain reaches no full backup in the listing is left alone: it is not
 *   restorable, but retention only removes what it can account for.
 */

import { isPositionText } from '../mysql/gtid.js';

export interface RetentionPolicy {
  /** Full backups kept per host (at least 1). */
  keepFull: number;
  /** Chains whose newest member is older than this are removed (the newest full still stays). */
  maxAgeMs?: number;
}

export interface RetentionCandidate {
  /** `<host>/<directory>`, unique in one catalogue. */
  id: string;
  host: string;
  kind: 'full' | 'incremental';
  /** Id of the backup an incremental builds on. */
  baseId?: string;
  createdAt: string;
  gtidPosition: string;
}

export interface RetentionDecision {
  id: string;
  reason: string;
}

export interface RetentionPlan {
  keep: RetentionDecision[];
  /** In the order to delete them: incrementals before the backup they build on. */
  remove: RetentionDecision[];
}

/** A full backup with the GTID a restore starts replication from. */
export function isRestorableFull(candidate: RetentionCandidate): boolean {
  return candidate.kind === 'full' && isPositionText(candidate.gtidPosition);
}

export function planRetention(
  candidates: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  now: Date,
  inUse: ReadonlySet<string> = new Set(),
): RetentionPlan {
  const plan: RetentionPlan = { keep: [], remove: [] };
  const hosts = [...new Set(candidates.map((candidate) => candidate.host))].sort();
  for (const host of hosts) {
    const own = candidates.filter((candidate) => candidate.host === host);
    const hostPlan = planHost(own, policy, now, inUse);
    plan.keep.push(...hostPlan.keep);
    plan.remove.push(...hostPlan.remove);
  }
  return plan;
}

function planHost(
  candidates: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  now: Date,
  inUse: ReadonlySet<string>,
): RetentionPlan {
  const byId = new Map(candidates.map((candidate) => [candidate.id, candidate]));
  /** The full backup an entry's chain starts from; undefined when the chain is broken or loops. */
  const rootOf = (candidate: RetentionCandidate): RetentionCandidate | undefined => {
    let current: RetentionCandidate | undefined = candidate;
    for (let hops = 0; current && hops <= candidates.length; hops += 1) {
      if (current.kind === 'full') return current;
      current = current.baseId === undefined ? undefined : byId.get(current.baseId);
    }
    return undefined;
  };
  const chains = new Map<string, RetentionCandidate[]>();
  const keep: RetentionDecision[] = [];
  for (const candidate of candidates) {
    const root = rootOf(candidate);
    if (!root) {
      keep.push({
        id: candidate.id,
        reason: 'an incremental whose chain reaches no full backup in the catalogue: left alone',
      });
      continue;
    }
    chains.set(root.id, [...(chains.get(root.id) ?? []), candidate]);
  }
  const newestFirst = (a: RetentionCandidate, b: RetentionCandidate) =>
    b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id);
  const fulls = candidates.filter((candidate) => candidate.kind === 'full').sort(newestFirst);
  const newestRestorable = fulls.find(isRestorableFull);
  const remove: RetentionDecision[] = [];
  fulls.forEach((full, index) => {
    const chain = (chains.get(full.id) ?? [full]).sort(newestFirst);
    const chainEnd = Date.parse((chain[0] as RetentionCandidate).createdAt);
    const ageMs = now.getTime() - chainEnd;
    let removal: string | undefined;
    if (index >= policy.keepFull)
      removal = `beyond keep_full ${policy.keepFull}: the ${ordinal(index + 1)} newest full backup`;
    else if (policy.maxAgeMs !== undefined && ageMs > policy.maxAgeMs)
      removal = `older than max_age ${formatAge(policy.maxAgeMs)} (its newest member is ${formatAge(ageMs)} old)`;
    let keepReason: string | undefined;
    if (full === newestRestorable) keepReason = 'the newest restorable full backup';
    else if (chain.some((member) => inUse.has(member.id)))
      keepReason = 'in use by a restore or clone';
    else if (removal === undefined) keepReason = `within keep_full ${policy.keepFull}`;
    const part = (member: RetentionCandidate) =>
      member === full ? '' : ` (an incremental on ${full.id})`;
    if (keepReason !== undefined)
      for (const member of chain)
        keep.push({ id: member.id, reason: `${keepReason}${part(member)}` });
    // Incrementals newest first, the full last: a failed delete never strands an incremental.
    else if (removal !== undefined)
      for (const member of [...chain.filter((entry) => entry !== full), full])
        remove.push({ id: member.id, reason: `${removal}${part(member)}` });
  });
  return { keep, remove };
}

function ordinal(n: number): string {
  const suffix =
    n % 100 >= 11 && n % 100 <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] ?? 'th');
  return `${n}${suffix}`;
}

function formatAge(ms: number): string {
  const hours = ms / 3_600_000;
  if (hours >= 48) return `${(hours / 24).toFixed(1)} d`;
  if (hours >= 1) return `${hours.toFixed(1)} h`;
  return `${Math.round(ms / 60_000)} min`;
}
