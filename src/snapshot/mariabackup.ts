import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  clientArguments,
  directorySize,
  execCommand,
  type CommandRunner,
  type LocalServer,
} from './command.js';
import type { SnapshotInfo, SnapshotMethod, SnapshotRequest } from './types.js';

export const SNAPSHOT_META = 'switchyard-snapshot.json';

export interface MariabackupRun {
  binary?: string;
  run?: CommandRunner;
}

/** mariadb-backup --backup into `targetDir` (which must not exist); incremental when a base is given. */
export async function mariabackupBackup(
  server: LocalServer,
  targetDir: string,
  options: MariabackupRun & { incrementalBasedir?: string; datadir?: string } = {},
): Promise<void> {
  const { args, cleanup } = clientArguments(server);
  try {
    const extra = [`--target-dir=${targetDir}`];
    if (options.datadir) extra.push(`--datadir=${options.datadir}`);
    if (options.incrementalBasedir)
      extra.push(`--incremental-basedir=${options.incrementalBasedir}`);
    // --defaults-extra-file (if any) must stay first.
    await (options.run ?? execCommand)(options.binary ?? 'mariadb-backup', [
      ...args,
      '--backup',
      ...extra,
    ]);
  } finally {
    cleanup();
  }
}

/** Makes a backup consistent (applies the redo log); with an incremental dir, merges it into the base. */
export async function mariabackupPrepare(
  targetDir: string,
  options: MariabackupRun & { incrementalDir?: string } = {},
): Promise<void> {
  const args = ['--prepare', `--target-dir=${targetDir}`];
  if (options.incrementalDir) args.push(`--incremental-dir=${options.incrementalDir}`);
  await (options.run ?? execCommand)(options.binary ?? 'mariadb-backup', args);
}

/**
 * The GTID position a backup corresponds to, from mariadb_backup_binlog_info (10.11) or the older
 * xtrabackup_binlog_info: "<binlog file>\t<offset>\t<gtid position>".
 */
export function readBackupGtid(dir: string): string {
  for (const name of ['mariadb_backup_binlog_info', 'xtrabackup_binlog_info']) {
    const file = join(dir, name);
    if (!existsSync(file)) continue;
    const fields = readFileSync(file, 'utf8').trim().split(/\s+/);
    return fields[2] ?? '';
  }
  throw new Error(
    `${dir} has no mariadb_backup_binlog_info: was binary logging on when it was taken?`,
  );
}

export interface MariabackupMethodOptions extends MariabackupRun {
  /** Each snapshot is a prepared backup in <targetDir>/<id>. */
  targetDir: string;
  server: LocalServer;
  datadir?: string;
}

/** Hot physical copy: the server keeps serving; the copy is prepared so it can be started as a datadir. */
export class MariabackupSnapshotMethod implements SnapshotMethod {
  readonly name = 'mariabackup' as const;

  constructor(private readonly options: MariabackupMethodOptions) {}

  async take(request: SnapshotRequest): Promise<SnapshotInfo> {
    const dir = resolve(this.options.targetDir, request.id);
    if (existsSync(dir)) throw new Error(`snapshot directory ${dir} already exists`);
    mkdirSync(this.options.targetDir, { recursive: true });
    try {
      await mariabackupBackup(this.options.server, dir, this.options);
      await mariabackupPrepare(dir, this.options);
      const info: SnapshotInfo = {
        id: request.id,
        method: 'mariabackup',
        path: dir,
        gtidPosition: readBackupGtid(dir),
        createdAt: new Date().toISOString(),
        sizeBytes: await directorySize(dir),
      };
      writeFileSync(join(dir, SNAPSHOT_META), `${JSON.stringify(info, null, 2)}\n`);
      return info;
    } catch (error) {
      // A half-written backup must never be listed or cloned from.
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  async list(): Promise<SnapshotInfo[]> {
    if (!existsSync(this.options.targetDir)) return [];
    const found: SnapshotInfo[] = [];
    for (const entry of readdirSync(this.options.targetDir, { withFileTypes: true })) {
      const meta = join(this.options.targetDir, entry.name, SNAPSHOT_META);
      if (entry.isDirectory() && existsSync(meta))
        found.push(JSON.parse(readFileSync(meta, 'utf8')) as SnapshotInfo);
    }
    return found.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async remove(snapshot: SnapshotInfo): Promise<void> {
    const dir = resolve(this.options.targetDir, snapshot.id);
    if (!dir.startsWith(`${resolve(this.options.targetDir)}/`))
      throw new Error(`refusing to remove ${dir}: outside ${this.options.targetDir}`);
    rmSync(dir, { recursive: true, force: true });
  }
}
