import type { Dispatcher } from 'undici';
import { agentTokenSource } from '../actuator/actuator.js';
import { backupRoot } from '../backup/backup.js';
import { readCatalogue, type CatalogueEntry, type CatalogueListing } from '../backup/catalogue.js';
import {
  describePrune,
  localCatalogue,
  pruneBackups,
  type CatalogueAccess,
  type PruneDeps,
  type PruneOutcome,
} from '../backup/prune.js';
import { isRestorableFull, type RetentionPolicy } from '../backup/retention.js';
import type { LoadedConfig } from '../config/load.js';
import { readSecret } from '../config/secrets.js';
import { silentLogger } from '../log.js';
import { agentCall } from './reseed.js';

/** The manager's name as the keeper of backup.dir (agents are named by their host). */
export const MANAGER_CATALOGUE = 'manager';

/** An agent that does not answer a listing within this is reported, not waited for. */
const LIST_TIMEOUT_MS = 10_000;
/** A delete removes a directory tree on the agent: large backups take a while. */
const DELETE_TIMEOUT_MS = 120_000;

export interface ListedBackup extends CatalogueEntry {
  /** `manager` (backup.dir) or the host whose agent keeps it (snapshot.backup_dir). */
  keptBy: string;
}

export interface CatalogueSource {
  keptBy: string;
  ok: boolean;
  /** The directory listed; null for an agent without snapshot.backup_dir. */
  dir?: string | null;
  count: number;
  error?: string;
}

export interface FleetListing {
  backups: ListedBackup[];
  sources: CatalogueSource[];
}

/** Without a backup section (backups only in agents' backup_dir) the schema's default applies. */
const DEFAULT_KEEP_FULL = 7;

export function retentionPolicy(config: LoadedConfig): RetentionPolicy {
  const retention = config.backup?.retention ?? { keep_full: DEFAULT_KEEP_FULL };
  return {
    keepFull: retention.keep_full,
    ...(retention.max_age !== undefined ? { maxAgeMs: retention.max_age } : {}),
  };
}

/**
 * Every place backups of the cluster are kept: the manager's backup.dir and each agent's
 * snapshot.backup_dir. Lists them for `backup --list` and GET /api/v1/backups, applies retention
 * after a backup, and keeps the time of each host's newest restorable full backup for
 * switchyard_backup_age_seconds.
 */
export class BackupCatalogues {
  /** Host -> epoch ms of its newest restorable full backup, wherever kept. */
  private readonly newestFull = new Map<string, number>();
  /** Per catalogue, what it last contributed: a catalogue that cannot be listed keeps its last figures. */
  private readonly newestBySource = new Map<string, Map<string, number>>();
  private refreshing?: Promise<void>;
  /** Ids in backup.dir a restore of this manager is sending (set by whoever runs the restores). */
  busy: () => Iterable<string> = () => [];

  constructor(
    private readonly config: LoadedConfig,
    private readonly options: {
      dispatcher?: () => Dispatcher;
      deps?: PruneDeps;
    } = {},
  ) {}

  private token(): string {
    return readSecret(agentTokenSource(this.config), 'agent token');
  }

  private agentHosts(): string[] {
    return Object.entries(this.config.hosts)
      .filter(([, entry]) => entry?.agent !== undefined)
      .map(([host]) => host)
      .sort();
  }

  /** The manager's backup.dir, when the config has a backup section. */
  managerCatalogue(): CatalogueAccess | undefined {
    if (!this.config.backup) return undefined;
    return localCatalogue(backupRoot(this.config), MANAGER_CATALOGUE, () => this.busy());
  }

  /** The snapshot.backup_dir of `agentHost`'s agent, over its API. */
  agentCatalogue(agentHost: string): CatalogueAccess {
    const url = this.config.hosts[agentHost]?.agent;
    if (!url) throw new Error(`${agentHost} has no agent URL (hosts.${agentHost}.agent)`);
    const call = <T>(method: string, path: string, timeoutMs: number) =>
      agentCall<T>(url, this.token(), method, path, undefined, this.options.dispatcher, timeoutMs);
    return {
      keptBy: agentHost,
      list: async (host) => listAgent(call, host),
      remove: async (id) => {
        const [host, name] = id.split('/') as [string, string];
        await call(
          'DELETE',
          `/api/v1/backups/${encodeURIComponent(host)}/${encodeURIComponent(name)}`,
          DELETE_TIMEOUT_MS,
        );
      },
      // The agent refuses to delete what it is sending; it knows that better than the manager.
      inUse: async () => new Set<string>(),
    };
  }

  /** Every catalogue, listed at once; one that cannot be listed is reported in `sources`. */
  async listAll(host?: string): Promise<FleetListing> {
    const accesses: Array<{ keptBy: string; list: () => Promise<ListingWithDir> }> = [];
    if (this.config.backup) {
      const root = backupRoot(this.config);
      accesses.push({
        keptBy: MANAGER_CATALOGUE,
        list: async () => ({ ...readCatalogue(root, host), dir: root }),
      });
    }
    for (const agentHost of this.agentHosts()) {
      const url = this.config.hosts[agentHost]?.agent as string;
      accesses.push({
        keptBy: agentHost,
        list: () =>
          listAgent(
            (method, path, timeoutMs) =>
              agentCall(
                url,
                this.token(),
                method,
                path,
                undefined,
                this.options.dispatcher,
                timeoutMs,
              ),
            host,
          ),
      });
    }
    const results = await Promise.allSettled(accesses.map((access) => access.list()));
    const listing: FleetListing = { backups: [], sources: [] };
    results.forEach((result, index) => {
      const { keptBy } = accesses[index] as (typeof accesses)[number];
      if (result.status === 'rejected') {
        listing.sources.push({
          keptBy,
          ok: false,
          count: 0,
          error: (result.reason as Error).message,
        });
        return;
      }
      const { entries, problems, dir } = result.value;
      listing.backups.push(...entries.map((entry) => ({ ...entry, keptBy })));
      listing.sources.push({
        keptBy,
        ok: problems.length === 0,
        dir,
        count: entries.length,
        ...(problems.length > 0
          ? {
              error: `unreadable: ${problems.map((problem) => `${problem.id} (${problem.error})`).join('; ')}`,
            }
          : {}),
      });
    });
    listing.backups.sort(
      (a, b) =>
        a.host.localeCompare(b.host) ||
        a.createdAt.localeCompare(b.createdAt) ||
        a.keptBy.localeCompare(b.keptBy),
    );
    return listing;
  }

  /**
   * Retention for `host` in the catalogue a backup just went into (`keptBy`: manager or an agent
   * host). Never throws; the outcome's line goes into the job's notes.
   */
  async pruneAfterBackup(host: string, keptBy: string): Promise<string | undefined> {
    const policy = retentionPolicy(this.config);
    const access =
      keptBy === MANAGER_CATALOGUE ? this.managerCatalogue() : this.agentCatalogue(keptBy);
    if (!policy || !access) return undefined;
    const outcome: PruneOutcome = await pruneBackups(access, host, policy, this.options.deps);
    void this.refresh();
    return describePrune(outcome);
  }

  /** Newest restorable full backup per host, from every catalogue that answers. */
  refresh(): Promise<void> {
    this.refreshing ??= this.listAll()
      .then((listing) => {
        for (const source of listing.sources) {
          // A catalogue that cannot be listed keeps its last figures: its backups did not age backwards.
          if (!source.ok) continue;
          const newest = new Map<string, number>();
          for (const backup of listing.backups.filter((entry) => entry.keptBy === source.keptBy)) {
            if (!isRestorableFull({ ...backup, gtidPosition: backup.gtidPosition ?? '' })) continue;
            const at = Date.parse(backup.createdAt);
            if (at > (newest.get(backup.host) ?? -Infinity)) newest.set(backup.host, at);
          }
          this.newestBySource.set(source.keptBy, newest);
        }
        this.newestFull.clear();
        for (const newest of this.newestBySource.values())
          for (const [host, at] of newest)
            if (at > (this.newestFull.get(host) ?? -Infinity)) this.newestFull.set(host, at);
      })
      .catch((error: Error) =>
        (this.options.deps?.logger ?? silentLogger).warn(
          { event: 'backup.catalogue_refresh_failed', error: error.message },
          'listing the backup catalogues failed',
        ),
      )
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  /** Host -> epoch ms of its newest restorable full backup (hosts without one are absent). */
  newestFullBackups(): ReadonlyMap<string, number> {
    return this.newestFull;
  }
}

type ListingWithDir = CatalogueListing & { dir: string | null };

async function listAgent(
  call: <T>(method: string, path: string, timeoutMs: number) => Promise<T>,
  host: string | undefined,
): Promise<ListingWithDir> {
  const answer = await call<{
    backup_dir: string | null;
    backups: CatalogueEntry[];
    problems: CatalogueListing['problems'];
  }>(
    'GET',
    `/api/v1/backups${host === undefined ? '' : `?host=${encodeURIComponent(host)}`}`,
    LIST_TIMEOUT_MS,
  );
  if (!Array.isArray(answer.backups) || !Array.isArray(answer.problems))
    throw new Error(
      'the agent answered without a backups list (an agent older than this manager?)',
    );
  return { entries: answer.backups, problems: answer.problems, dir: answer.backup_dir };
}
