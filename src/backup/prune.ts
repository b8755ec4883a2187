import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import type { Journal } from '../journal/journal.js';
import { silentLogger, type Logger } from '../log.js';
import {
  deleteFromCatalogue,
  readCatalogue,
  retentionCandidate,
  type CatalogueListing,
} from './catalogue.js';
import { planRetention, type RetentionDecision, type RetentionPolicy } from './retention.js';

/** Where a catalogue is kept and how to reach it: the manager's backup.dir, or an agent over HTTP. */
export interface CatalogueAccess {
  /** `manager`, or the name of the host whose agent keeps the catalogue. */
  keptBy: string;
  list(host: string): Promise<CatalogueListing>;
  remove(id: string): Promise<void>;
  /** Ids a running restore or clone reads from; their chains are kept. */
  inUse(): Promise<ReadonlySet<string>>;
}

export interface PruneOutcome {
  keptBy: string;
  host: string;
  removed: RetentionDecision[];
  kept: RetentionDecision[];
  /** Set when nothing was pruned because the catalogue could not be listed, or a delete failed. */
  error?: string;
}

export interface PruneDeps {
  journal?: Journal;
  logger?: Logger;
  now?: () => Date;
}

/**
 * Applies `policy` to the backups of `host` in one catalogue. Never throws: a backup that just
 * succeeded is not failed by its clean-up. When the catalogue cannot be listed (or one of its
 * entries cannot be read) nothing is removed: a plan made from part of the catalogue could remove
 * the only backups that count.
 */
export async function pruneBackups(
  access: CatalogueAccess,
  host: string,
  policy: RetentionPolicy,
  deps: PruneDeps = {},
): Promise<PruneOutcome> {
  const log = deps.logger ?? silentLogger;
  const outcome: PruneOutcome = { keptBy: access.keptBy, host, removed: [], kept: [] };
  let listing: CatalogueListing;
  let inUse: ReadonlySet<string>;
  try {
    [listing, inUse] = await Promise.all([access.list(host), access.inUse()]);
    if (listing.problems.length > 0)
      throw new Error(
        `unreadable entries: ${listing.problems.map((problem) => `${problem.id} (${problem.error})`).join('; ')}`,
      );
  } catch (error) {
    outcome.error = `listing the backups of ${host} kept by ${access.keptBy} failed, nothing pruned: ${(error as Error).message}`;
    log.warn(
      {
        event: 'backup.prune_skipped',
        host,
        keptBy: access.keptBy,
        error: (error as Error).message,
      },
      outcome.error,
    );
    return outcome;
  }
  const plan = planRetention(
    listing.entries.map(retentionCandidate),
    policy,
    (deps.now ?? (() => new Date()))(),
    inUse,
  );
  outcome.kept = plan.keep;
  if (plan.remove.length === 0) return outcome;
  const action = randomUUID();
  deps.journal?.append({
    phase: 'before',
    event: 'backup.prune',
    action,
    host,
    inputs: {
      kept_by: access.keptBy,
      keep_full: policy.keepFull,
      max_age_seconds: policy.maxAgeMs === undefined ? null : policy.maxAgeMs / 1000,
      remove: plan.remove.map((decision) => decision.id),
    },
    reason: plan.remove.map((decision) => `${decision.id}: ${decision.reason}`).join('; '),
  });
  for (const decision of plan.remove) {
    try {
      await access.remove(decision.id);
      outcome.removed.push(decision);
      log.info(
        {
          event: 'backup.pruned',
          host,
          keptBy: access.keptBy,
          id: decision.id,
          reason: decision.reason,
        },
        'backup removed by retention',
      );
    } catch (error) {
      // The rest of the plan stays: the next backup's prune tries again from a fresh listing.
      outcome.error = `removing ${decision.id} kept by ${access.keptBy} failed: ${(error as Error).message}`;
      log.error(
        { event: 'backup.prune_failed', host, keptBy: access.keptBy, id: decision.id },
        outcome.error,
      );
      break;
    }
  }
  deps.journal?.append({
    phase: 'after',
    event: 'backup.prune',
    action,
    host,
    outcome: outcome.error ? 'failed' : 'ok',
    detail: outcome.error
      ? `${outcome.error}; removed before that: ${outcome.removed.map((decision) => decision.id).join(', ') || 'none'}`
      : `removed ${outcome.removed.map((decision) => decision.id).join(', ')} kept by ${access.keptBy}`,
  });
  return outcome;
}

/**
 * A catalogue on this machine. `busy` names ids a restore of this process reads. A sandbox
 * restore in another process (the CLI) leaves a `.restore-*` staging directory in the root while
 * it prepares the chain: while one exists, every backup counts as in use.
 */
export function localCatalogue(
  root: string,
  keptBy: string,
  busy: () => Iterable<string> = () => [],
): CatalogueAccess {
  return {
    keptBy,
    list: async (host) => readCatalogue(root, host),
    remove: async (id) => {
      deleteFromCatalogue(root, id, new Set(busy()));
    },
    inUse: async () => {
      const ids = new Set(busy());
      if (existsSync(root) && readdirSync(root).some((name) => name.startsWith('.restore-')))
        for (const entry of readCatalogue(root).entries) ids.add(entry.id);
      return ids;
    },
  };
}

/** The prune's outcome in one line, for a job's notes or the CLI. */
export function describePrune(outcome: PruneOutcome): string | undefined {
  if (outcome.error) return `retention: ${outcome.error}`;
  if (outcome.removed.length === 0) return undefined;
  return `retention removed ${outcome.removed.map((decision) => `${decision.id} (${decision.reason})`).join(', ')} kept by ${outcome.keptBy}`;
}
