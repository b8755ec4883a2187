import { existsSync, mkdirSync, rmSync } from 'node:fs';
import {
  execCommand,
  withGlobalReadLock,
  type CommandRunner,
  type LocalServer,
  type ReadLock,
} from './command.js';
import { listSidecars, snapshotPath, writeSidecar } from './sidecar.js';
import type { SnapshotInfo, SnapshotMethod, SnapshotRequest } from './types.js';

export interface BtrfsMethodOptions {
  /** The subvolume holding the datadir (snapshot.path). */
  subvolume: string;
  /** Where read-only snapshots are created (same btrfs filesystem), with <id>.json beside each. */
  targetDir: string;
  server: LocalServer;
  run?: CommandRunner;
  /** Injected for unit tests; defaults to FLUSH TABLES WITH READ LOCK on `server`. */
  readLock?: ReadLock;
}

/**
 * Read-only btrfs subvolume snapshot taken under a brief global read lock: the snapshot is atomic
 * (InnoDB recovers it like after a power cut) and, because commits are blocked while it is taken,
 * @@gtid_binlog_pos read under the same lock is exactly the position its data corresponds to.
 */
export class BtrfsSnapshotMethod implements SnapshotMethod {
  readonly name = 'btrfs' as const;

  constructor(private readonly options: BtrfsMethodOptions) {}

  private get run(): CommandRunner {
    return this.options.run ?? execCommand;
  }

  async take(request: SnapshotRequest): Promise<SnapshotInfo> {
    const path = snapshotPath(this.options.targetDir, request.id);
    if (existsSync(path)) throw new Error(`snapshot ${path} already exists`);
    mkdirSync(this.options.targetDir, { recursive: true });
    const lock: ReadLock =
      this.options.readLock ?? ((work) => withGlobalReadLock(this.options.server, work));
    const gtidPosition = await lock(async (position) => {
      await this.run('btrfs', ['subvolume', 'snapshot', '-r', this.options.subvolume, path]);
      return position;
    });
    const info: SnapshotInfo = {
      id: request.id,
      method: 'btrfs',
      path,
      gtidPosition,
      createdAt: new Date().toISOString(),
    };
    writeSidecar(path, info);
    return info;
  }

  async list(): Promise<SnapshotInfo[]> {
    return listSidecars(this.options.targetDir);
  }

  async remove(snapshot: SnapshotInfo): Promise<void> {
    const path = snapshotPath(this.options.targetDir, snapshot.id);
    if (existsSync(path)) await this.run('btrfs', ['subvolume', 'delete', path]);
    rmSync(`${path}.json`, { force: true });
  }
}
