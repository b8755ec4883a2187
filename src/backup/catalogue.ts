import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { BACKUP_META, type BackupInfo } from './backup.js';
import type { RetentionCandidate } from './retention.js';

/**
 * A catalogue is a directory laid out `<root>/<host>/<directory>/switchyard-backup.json`: the
 * manager's backup.dir and an agent's snapshot.backup_dir alike. Entries are named by id
 * `<host>/<directory>`; dot directories (a copy still arriving, a restore's staging) are not
 * entries.
 */

/** Host and directory names a catalogue holds; anything else in an id is refused before any path is built. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export interface CatalogueEntry extends BackupInfo {
  id: string;
  /** Id of the backup an incremental builds on. */
  baseId?: string;
}

export interface CatalogueListing {
  entries: CatalogueEntry[];
  /** Entries whose metadata could not be read: a listing with problems is not pruned from. */
  problems: Array<{ id: string; error: string }>;
}

export class CatalogueRefused extends Error {
  override name = 'CatalogueRefused';
  constructor(
    readonly code: 'malformed' | 'not_found' | 'in_use' | 'has_dependents',
    message: string,
  ) {
    super(message);
  }
}

/** Splits `<host>/<directory>`, refusing anything that is not exactly two plain names (no "..", no "/" inside). */
export function parseBackupId(id: string): { host: string; name: string } {
  const parts = id.split('/');
  const [host, name] = parts;
  if (
    parts.length !== 2 ||
    host === undefined ||
    name === undefined ||
    !NAME.test(host) ||
    !NAME.test(name) ||
    host.includes('..') ||
    name.includes('..')
  )
    throw new CatalogueRefused('malformed', `"${id}" is not a backup id (<host>/<directory>)`);
  return { host, name };
}

/**
 * The entries under `root` (of `host` only when given). Paths come from the directory listing,
 * never from the metadata, so a copied or moved catalogue still lists where its files are. A
 * missing root is an empty catalogue; an unreadable root throws.
 */
export function readCatalogue(root: string, host?: string): CatalogueListing {
  const listing: CatalogueListing = { entries: [], problems: [] };
  if (!existsSync(root)) return listing;
  if (host !== undefined && !NAME.test(host))
    throw new CatalogueRefused('malformed', `"${host}" is not a host name`);
  const hosts =
    host !== undefined
      ? [host]
      : readdirSync(root, { withFileTypes: true })
          .filter((entry) => entry.isDirectory() && NAME.test(entry.name))
          .map((entry) => entry.name);
  for (const name of hosts) {
    const hostDir = join(root, name);
    if (!existsSync(hostDir)) continue;
    for (const entry of readdirSync(hostDir, { withFileTypes: true })) {
      if (!entry.isDirectory() || !NAME.test(entry.name)) continue;
      const path = join(hostDir, entry.name);
      const meta = join(path, BACKUP_META);
      if (!existsSync(meta)) continue;
      const id = `${name}/${entry.name}`;
      try {
        const info = JSON.parse(readFileSync(meta, 'utf8')) as BackupInfo;
        if (info.kind !== 'full' && info.kind !== 'incremental')
          throw new Error(`unknown kind ${JSON.stringify(info.kind)}`);
        if (typeof info.createdAt !== 'string' || Number.isNaN(Date.parse(info.createdAt)))
          throw new Error('no createdAt time');
        listing.entries.push({
          ...info,
          host: name,
          id,
          path,
          // Incrementals are taken into the same host directory as their base (takeBackup).
          ...(info.base !== undefined ? { baseId: `${name}/${basename(info.base)}` } : {}),
        });
      } catch (error) {
        listing.problems.push({ id, error: `${BACKUP_META}: ${(error as Error).message}` });
      }
    }
  }
  listing.entries.sort(
    (a, b) => a.host.localeCompare(b.host) || a.createdAt.localeCompare(b.createdAt),
  );
  return listing;
}

export function retentionCandidate(entry: CatalogueEntry): RetentionCandidate {
  return {
    id: entry.id,
    host: entry.host,
    kind: entry.kind,
    ...(entry.baseId !== undefined ? { baseId: entry.baseId } : {}),
    createdAt: entry.createdAt,
    gtidPosition: entry.gtidPosition ?? '',
  };
}

/**
 * Deletes the backup `id` from the catalogue at `root`. The id is checked against the catalogue
 * itself: only a directory the listing returned is removed, so no input ever becomes a path.
 * Refused when it is in use, or when an incremental builds on it.
 */
export function deleteFromCatalogue(
  root: string,
  id: string,
  inUse: ReadonlySet<string> = new Set(),
): CatalogueEntry {
  const { host } = parseBackupId(id);
  const { entries } = readCatalogue(root, host);
  const entry = entries.find((candidate) => candidate.id === id);
  if (!entry) throw new CatalogueRefused('not_found', `no backup ${id} in ${root}`);
  if (inUse.has(id))
    throw new CatalogueRefused('in_use', `${id} is in use by a restore or clone; try again later`);
  const dependents = entries.filter((candidate) => candidate.baseId === id);
  if (dependents.length > 0)
    throw new CatalogueRefused(
      'has_dependents',
      `${dependents.map((candidate) => candidate.id).join(', ')} build on ${id}; delete them first`,
    );
  rmSync(entry.path, { recursive: true, force: true });
  return entry;
}
