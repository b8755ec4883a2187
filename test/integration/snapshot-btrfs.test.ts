import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { MariaDbInstance } from '../../src/sandbox/instance.js';
import { findFreePortRange } from '../../src/sandbox/ports.js';
import { BtrfsSnapshotMethod } from '../../src/snapshot/btrfs.js';
import { MARIADB, requireBinaries, requireRoot } from '../support/binaries.js';
import { createBtrfsVolume } from '../support/btrfs.js';

const run = promisify(execFile);

test(
  'btrfs snapshot: read-only subvolume snapshot of a live datadir, with the GTID read under the lock',
  { timeout: 180_000 },
  async (t) => {
    if (!requireRoot(t, 'loop device and mount')) return;
    if (
      !requireBinaries(t, [
        ...MARIADB,
        ['mkfs.btrfs', 'btrfs-progs'],
        ['btrfs', 'btrfs-progs'],
        ['losetup', 'mount'],
      ])
    )
      return;
    let instance: MariaDbInstance | undefined;
    // The instance lives on the volume: it stops before the unmount.
    const { mountPoint, subvolume } = await createBtrfsVolume(t, async () => instance?.stop());

    instance = new MariaDbInstance({
      name: 'btr',
      dir: subvolume,
      port: await findFreePortRange(1),
      serverId: 71,
    });
    await instance.initialize();
    await instance.start();
    await instance.sql('SET GLOBAL read_only = OFF');
    await instance.sql('CREATE DATABASE app');
    await instance.sql('CREATE TABLE app.t (id INT PRIMARY KEY, v INT)');
    await instance.sql('INSERT INTO app.t VALUES (1, 1), (2, 2)');
    const [row] = await instance.sql('SELECT @@global.gtid_binlog_pos AS pos');

    const method = new BtrfsSnapshotMethod({
      subvolume,
      targetDir: join(mountPoint, 'snapshots'),
      server: { socket: instance.socket, user: 'root' },
    });
    const info = await method.take({ id: 'snap1' });
    assert.equal(info.gtidPosition, row?.pos);
    assert.ok(existsSync(join(info.path, 'data', 'app', 't.ibd')));
    const { stdout } = await run('btrfs', ['property', 'get', '-ts', info.path, 'ro']);
    assert.match(stdout, /ro=true/);
    // The lock was released: the server takes writes again.
    await instance.sql('INSERT INTO app.t VALUES (3, 3)');
    assert.deepEqual(
      (await method.list()).map((snapshot) => snapshot.id),
      ['snap1'],
    );
    await method.remove(info);
    assert.ok(!existsSync(info.path));
    assert.deepEqual(await method.list(), []);
  },
);
