import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SnapshotInfo } from './types.js';

/**
 * Snapshots kept as <targetDir>/<id> with their SnapshotInfo in <id>.json beside them (btrfs,
 * lvm): the JSON is what survives a manager restart and what `list` reports.
 */

/** The snapshot's path, refusing an id that would lead outside targetDir ("../x", "/etc"). */
export function snapshotPath(targetDir: string, id: string): string {
  const path = resolve(targetDir, id);
  if (!path.startsWith(`${resolve(targetDir)}/`))
    throw new Error(`refusing snapshot path ${path}: outside ${targetDir}`);
  return path;
}

export function writeSidecar(path: string, info: SnapshotInfo): void {
  writeFileSync(`${path}.json`, `${JSON.stringify(info, null, 2)}\n`);
}

/** Every snapshot with a sidecar in targetDir, oldest first. */
export function listSidecars(targetDir: string): SnapshotInfo[] {
  if (!existsSync(targetDir)) return [];
  return readdirSync(targetDir)
    .filter((name) => name.endsWith('.json'))
    .map((name) => JSON.parse(readFileSync(join(targetDir, name), 'utf8')) as SnapshotInfo)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}
