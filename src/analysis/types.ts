/**
 * What `switchyard why` and GET /api/v1/analysis answer: the situations the engine sees in one
 * observed cluster, the plan it would run, and what stops it. The names are part of the outside
 * of the system (the `switchyard_situation` metric's label, dashboards, alert rules).
 */
import type { Mode } from '../config/schema.js';

/**
 * Every situation the analysis can name. The table test (test/unit/analysis.test.ts) has one
 * row per name and fails when a name has none, so a new situation cannot go untested.
 */
export const SITUATION_NAMES = [
  // The writer
  'dead_writer',
  'dead_writer_and_some_replicas',
  'unreachable_writer',
  'hung_writer',
  'isolated_writer',
  'manager_path_broken',
  'no_writer',
  'two_writable_hosts',
  'stray_writable_host',
  'writer_without_lease',
  'ineligible_writer',
  'unproved_fence',
  'lease_wait',
  'operation_in_progress',
  // Other hosts
  'host_down',
  'broken_replica',
  'lagging_replica',
  'stray_replica',
  'errant_transactions',
  'held_candidate',
  'held_host',
  'vip_mismatch',
  'role_unassigned',
  // The manager
  'maintenance',
  'manual_mode',
  'passive_mode',
  'not_leader',
] as const;

export type SituationName = (typeof SITUATION_NAMES)[number];

export interface Situation {
  name: SituationName;
  /** The host it is about, when it is about one. */
  host?: string;
  /** One sentence for people. */
  summary: string;
  /** What was seen that makes it so (observations, the evidence rule's verdicts, journaled conditions). */
  evidence: Record<string, unknown>;
}

/** A named step of the plan, in the order the engine runs it. */
export interface PlanStep {
  step:
    | 'pre_hook'
    | 'fence'
    | 'wait_for_lease'
    | 'final_catch_up'
    | 'stop_replica_io'
    | 'catch_up'
    | 'stop_replication'
    | 'grant_lease'
    | 'promote'
    | 'route'
    | 'repoint'
    | 'post_hook';
  host?: string;
  detail: string;
}

export interface Plan {
  /** failover: the writer is dead; switchover: it moves away from a live writer; election: none holds the role. */
  kind: 'failover' | 'switchover' | 'election';
  role: string;
  from: string | null;
  /** Absent when no host can take the role (a blocker says why). */
  to?: string;
  reason: string;
  steps: PlanStep[];
}

/**
 * Why the engine does not act (or not yet). `rule` names the DESIGN.md invariant or the setting
 * that says no; `from` names the hosts whose evidence is missing or contradicts.
 */
export interface Blocker {
  kind:
    | 'evidence_missing'
    | 'evidence_contradicts'
    | 'lease_wait'
    | 'mode'
    | 'not_leader'
    | 'alerts_only'
    | 'maintenance'
    | 'held_candidate'
    | 'errant_host'
    | 'no_candidate'
    | 'backoff'
    | 'operation_in_progress'
    | 'refusal';
  host?: string;
  rule?: string;
  detail: string;
  from?: string[];
  /** ISO time after which this blocker is expected to end (lease wait, maintenance, backoff). */
  until?: string;
}

export interface Analysis {
  cluster: string;
  at: string;
  mode: Mode;
  writer: string | null;
  situations: Situation[];
  /** What the engine would run for the writer role now; absent when nothing needs doing. */
  plan?: Plan;
  /** true when the plan would run now (active mode, leader, nothing blocks it). */
  acts: boolean;
  blockers: Blocker[];
  /** The analysis narrowed to one host (`why HOST`): situations, blockers and plan steps about it. */
  host?: string;
}
