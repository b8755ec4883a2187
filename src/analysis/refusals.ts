/**
 * Every refusal the engine journals, and the lasting conditions it keeps while one repeats each
 * cycle, mapped to what `switchyard why` shows for it. test/unit/analysis-refusals.test.ts reads
 * the sources for `phase: 'refused'` events and `condition(...)` keys and fails on any not listed
 * here, so a new refusal cannot be invisible to `why`.
 */
import type { Blocker, SituationName } from './types.js';

export interface RefusalCoverage {
  /**
   * A situation or blocker kind `why` shows while it lasts; `command_answer` for refusals of an
   * operator's command, which that command's own 409 answer carries (nothing lasts to show later).
   */
  shownAs: Array<SituationName | Blocker['kind'] | 'command_answer'>;
  /** The DESIGN.md invariant or setting behind it. */
  rule: string;
}

/** Journal events written with phase "refused" (and failover.withheld, a refusal in all but name). */
export const REFUSED_EVENTS: Record<string, RefusalCoverage> = {
  'failover.withheld': {
    shownAs: ['unreachable_writer', 'manager_path_broken', 'evidence_missing', 'maintenance'],
    rule: 'invariant 4 (a dead writer only on evidence), or maintenance',
  },
  'failover.refused': {
    shownAs: ['refusal', 'no_candidate', 'held_candidate', 'errant_host'],
    rule: 'invariant 2 (the new writer has every transaction) or 7 (the old lease lapsed first), or hooks.pre_failover_aborts',
  },
  'writer.none': {
    shownAs: ['no_writer', 'refusal', 'no_candidate'],
    rule: 'invariant 1 (not while an unseen host might be writable) and 2',
  },
  'writer.split_brain': { shownAs: ['two_writable_hosts', 'refusal'], rule: 'invariant 1' },
  'writer.lease_lapsed': { shownAs: ['isolated_writer', 'refusal'], rule: 'invariant 7' },
  'writer.no_lease': { shownAs: ['writer_without_lease', 'refusal'], rule: 'invariant 7' },
  'switchover.refused': {
    shownAs: ['ineligible_writer', 'refusal', 'backoff', 'command_answer'],
    rule: 'invariant 2 and 3 (a switchover target caught up, the old writer fenced)',
  },
  'replica.repoint_refused': {
    shownAs: ['stray_replica'],
    rule: 'a replica with transactions the writer lacks is not repointed (issue 22)',
  },
  'startup.passive': {
    shownAs: ['passive_mode', 'mode'],
    rule: 'start-up: stored state and live cluster disagree',
  },
  'host.set_online': { shownAs: ['command_answer'], rule: 'operator command' },
  'host.set_offline': { shownAs: ['command_answer'], rule: 'operator command' },
  'role.move': { shownAs: ['command_answer'], rule: 'operator command' },
  'host.rejoin': { shownAs: ['command_answer'], rule: 'operator command' },
};

/**
 * Keys of the lasting conditions (EngineCore.condition) and the rule behind each; a key with a
 * colon is a prefix (`unassigned:ROLE:IP`, `vip.add_deferred:ROLE:IP`, `replica.follow:HOST`).
 */
export const CONDITION_KEYS: Record<string, RefusalCoverage> = {
  'failover.withheld': REFUSED_EVENTS['failover.withheld'] as RefusalCoverage,
  'failover.refused': REFUSED_EVENTS['failover.refused'] as RefusalCoverage,
  'writer.none': REFUSED_EVENTS['writer.none'] as RefusalCoverage,
  'writer.split_brain': REFUSED_EVENTS['writer.split_brain'] as RefusalCoverage,
  'writer.lease_lapsed': REFUSED_EVENTS['writer.lease_lapsed'] as RefusalCoverage,
  'writer.no_lease': REFUSED_EVENTS['writer.no_lease'] as RefusalCoverage,
  'writer.stuck': REFUSED_EVENTS['switchover.refused'] as RefusalCoverage,
  'unassigned:': { shownAs: ['role_unassigned'], rule: 'no eligible host for a role IP' },
  'vip.add_deferred:': {
    shownAs: ['role_unassigned'],
    rule: "a cycle's own VIP move does not wait on an agent that does not answer",
  },
  'replica.follow:': REFUSED_EVENTS['replica.repoint_refused'] as RefusalCoverage,
};

/** The coverage entry for a condition key (exact, or by its prefix up to the colon). */
export function conditionCoverage(key: string): RefusalCoverage | undefined {
  const colon = key.indexOf(':');
  return CONDITION_KEYS[key] ?? (colon > 0 ? CONDITION_KEYS[key.slice(0, colon + 1)] : undefined);
}
