import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface BtrfsVolume {
  mountPoint: string;
  /** A subvolume for a datadir, so it can be snapshotted. */
  subvolume: string;
}

/**
 * A 1 GiB btrfs filesystem on a loop device (needs root), with one subvolume. Torn down when the
 * test ends: `beforeUnmount` first (stop the server whose datadir lives there), then unmount,
 * detach and delete, whatever failed on the way.
 */
export async function createBtrfsVolume(
  t: TestContext,
  beforeUnmount: () => Promise<unknown>,
): Promise<BtrfsVolume> {
  const base = mkdtempSync(join(tmpdir(), 'sy-btrfs-'));
  const image = join(base, 'fs.img');
  const mountPoint = join(base, 'mnt');
  mkdirSync(mountPoint);
  let device: string | undefined;
  let mounted = false;
  t.after(async () => {
    await beforeUnmount().catch(() => undefined);
    if (mounted)
      await run('umount', [mountPoint]).catch(() =>
        run('umount', ['-l', mountPoint]).catch(() => undefined),
      );
    if (device) await run('losetup', ['-d', device]).catch(() => undefined);
    rmSync(base, { recursive: true, force: true });
  });
  await run('truncate', ['-s', '1G', image]);
  await run('mkfs.btrfs', ['-q', image]);
  device = (await run('losetup', ['--find', '--show', image])).stdout.trim();
  await run('mount', [device, mountPoint]);
  mounted = true;
  const subvolume = join(mountPoint, 'mysql');
  await run('btrfs', ['subvolume', 'create', subvolume]);
  return { mountPoint, subvolume };
}
