import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { MariaDbInstance } from '../../src/sandbox/instance.js';
import { findFreePortRange } from '../../src/sandbox/ports.js';
import { BtrfsSnapshotMethod } from '../../src/snapshot/btrfs.js';
import { MARIADB, requireBinaries, requireRoot } from '../support/binaries.js';

const run = promisify(execFile);

test('btrfs snapshot: read-only subvolume snapshot of a live datadir, with the GTID read under the lock', { timeout: 180_000 }, async (t) => {
  if (!requireRoot(t, 'loop device and mount')) return;
  if (!requireBinaries(t, [...MARIADB, ['mkfs.btrfs', 'btrfs-progs'], ['btrfs', 'btrfs-progs'], ['losetup', 'mount']])) return;
  const base = mkdtempSync(join(tmpdir(), 'sy-btrfs-'));
  const image = join(base, 'fs.img');
  const mountPoint = join(base, 'mnt');
  mkdirSync(mountPoint);
  let device: string | undefined;
  let mounted = false;
  let instance: MariaDbInstance | undefined;
  // Cleanup in reverse order, whatever failed.
  t.after(async () => {
    await instance?.stop().catch(() => undefined);
    if (mounted) await run('umount', [mountPoint]).catch(() => run('umount', ['-l', mountPoint]).catch(() => undefined));
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

  instance = new MariaDbInstance({ name: 'btr', dir: subvolume, port: await findFreePortRange(1), serverId: 71 });
  await instance.initialize();
  await instance.start();
  await instance.sql('SET GLOBAL read_only = OFF');
  await instance.sql('CREATE DATABASE app');
  await instance.sql('CREATE TABLE app.t (id INT PRIMARY KEY, v INT)');
  await instance.sql('INSERT INTO app.t VALUES (1, 1), (2, 2)');
  const [row] = await instance.sql('SELECT @@global.gtid_binlog_pos AS pos');

  const method = new BtrfsSnapshotMethod({ subvolume, targetDir: join(mountPoint, 'snapshots'), server: { socket: instance.socket, user: 'root' } });
  const info = await method.take({ id: 'snap1' });
  assert.equal(info.gtidPosition, row?.pos);
  assert.ok(existsSync(join(info.path, 'data', 'app', 't.ibd')));
  const { stdout } = await run('btrfs', ['property', 'get', '-ts', info.path, 'ro']);
  assert.match(stdout, /ro=true/);
  // The lock was released: the server takes writes again.
  await instance.sql('INSERT INTO app.t VALUES (3, 3)');
  assert.deepEqual((await method.list()).map((snapshot) => snapshot.id), ['snap1']);
  await method.remove(info);
  assert.ok(!existsSync(info.path));
  assert.deepEqual(await method.list(), []);
});
