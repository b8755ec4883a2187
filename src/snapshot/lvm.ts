import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  directorySize,
  execCommand,
  withGlobalReadLock,
  type CommandRunner,
  type LocalServer,
  type ReadLock,
} from './command.js';
import { listSidecars, snapshotPath, writeSidecar } from './sidecar.js';
import type { SnapshotInfo, SnapshotMethod, SnapshotRequest } from './types.js';

export interface LvmMethodOptions {
  /** VG/LV holding the datadir. */
  volume: string;
  /** Copy-on-write space for the snapshot while it is copied, e.g. "5G". */
  size: string;
  /** The datadir's path relative to the LV's filesystem root ("" when the LV is the datadir). */
  datadirInVolume?: string;
  /** Copies land in <targetDir>/<id>; the snapshot is mounted at <targetDir>/.mnt-<id> while copied. */
  targetDir: string;
  server: LocalServer;
  run?: CommandRunner;
  readLock?: ReadLock;
  /** XFS refuses to mount a snapshot beside its origin without nouuid. */
  mountOptions?: string;
  measure?: (path: string) => Promise<number>;
}

/**
 * LVM snapshot: lvcreate -s under a brief global read lock (so the recorded GTID matches), then
 * mount it read-only, copy the datadir out, unmount and lvremove, so the copy-on-write volume
 * lives only as long as the copy. Every step after lvcreate is undone on failure.
 */
export class LvmSnapshotMethod implements SnapshotMethod {
  readonly name = 'lvm' as const;

  constructor(private readonly options: LvmMethodOptions) {}

  private get run(): CommandRunner {
    return this.options.run ?? execCommand;
  }

  async take(request: SnapshotRequest): Promise<SnapshotInfo> {
    const [group] = this.options.volume.split('/');
    const snapshotName = `sy-${request.id}`;
    const snapshotVolume = `${group}/${snapshotName}`;
    const copy = snapshotPath(this.options.targetDir, request.id);
    const mountPoint = resolve(this.options.targetDir, `.mnt-${request.id}`);
    if (existsSync(copy)) throw new Error(`snapshot copy ${copy} already exists`);
    mkdirSync(this.options.targetDir, { recursive: true });
    const lock: ReadLock =
      this.options.readLock ?? ((work) => withGlobalReadLock(this.options.server, work));
    const gtidPosition = await lock(async (position) => {
      await this.run('lvcreate', [
        '--snapshot',
        '--name',
        snapshotName,
        '--size',
        this.options.size,
        this.options.volume,
      ]);
      return position;
    });
    let mounted = false;
    try {
      mkdirSync(mountPoint, { recursive: true });
      await this.run('mount', [
        '-o',
        this.options.mountOptions ?? 'ro',
        `/dev/${snapshotVolume}`,
        mountPoint,
      ]);
      mounted = true;
      const source = join(mountPoint, this.options.datadirInVolume ?? '');
      await this.run('cp', ['-a', '--', `${source}/.`, copy]);
    } catch (error) {
      rmSync(copy, { recursive: true, force: true });
      throw error;
    } finally {
      if (mounted) await this.run('umount', [mountPoint]).catch(() => undefined);
      await this.run('lvremove', ['-f', snapshotVolume]).catch(() => undefined);
      rmSync(mountPoint, { recursive: true, force: true });
    }
    const info: SnapshotInfo = {
      id: request.id,
      method: 'lvm',
      path: copy,
      gtidPosition,
      createdAt: new Date().toISOString(),
      sizeBytes: await (this.options.measure ?? directorySize)(copy),
    };
    writeSidecar(copy, info);
    return info;
  }

  async list(): Promise<SnapshotInfo[]> {
    return listSidecars(this.options.targetDir);
  }

  async remove(snapshot: SnapshotInfo): Promise<void> {
    const path = snapshotPath(this.options.targetDir, snapshot.id);
    rmSync(path, { recursive: true, force: true });
    rmSync(`${path}.json`, { force: true });
  }
}
