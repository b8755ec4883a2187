import assert from 'node:assert/strict';
import { cpSync, existsSync, renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runChecksum } from '../../src/checksum/run.js';
import { cloneFromSnapshot } from '../../src/clone/from-snapshot.js';
import { BtrfsSnapshotMethod } from '../../src/snapshot/btrfs.js';
import { MARIADB, requireBinaries, requireRoot } from '../support/binaries.js';
import { createBtrfsVolume } from '../support/btrfs.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

test(
  'clone from a btrfs snapshot of a replica: the target replicates from the writer and checksums clean',
  { timeout: 300_000 },
  async (t) => {
    if (!requireRoot(t, 'loop device and mount')) return;
    if (
      !requireBinaries(t, [
        ...MARIADB,
        ['mkfs.btrfs', 'btrfs-progs'],
        ['btrfs', 'btrfs-progs'],
        ['tar', 'tar'],
      ])
    )
      return;
    const sandbox = await startSandbox(t, { masters: 1, replicas: 2 });
    // db2 (the clone target) lives on the volume: it stops before the unmount.
    const { mountPoint, subvolume } = await createBtrfsVolume(t, () =>
      sandbox.instance('db2').stop(),
    );

    const db1 = sandbox.instance('db1');
    const db2 = sandbox.instance('db2');
    const db3 = sandbox.instance('db3');
    await db1.sql('CREATE DATABASE app');
    await db1.sql('CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))');
    await db1.sql(
      `INSERT INTO app.t VALUES ${Array.from({ length: 500 }, (_, index) => `(${index + 1}, 'v${index}')`).join(',')}`,
    );
    await waitFor(
      'db2 and db3 have the rows',
      async () => {
        for (const instance of [db2, db3])
          if (Number((await instance.sql('SELECT COUNT(*) AS n FROM app.t'))[0]?.n) !== 500)
            return false;
        return true;
      },
      60_000,
    );

    // Put db2's datadir on the btrfs subvolume (the layout the btrfs method expects).
    await db2.stop();
    const datadir = join(db2.spec.dir, 'data');
    cpSync(datadir, join(subvolume, 'data'), { recursive: true });
    renameSync(datadir, `${datadir}.orig`);
    symlinkSync(join(subvolume, 'data'), datadir);
    await db2.start();

    // db3 drifts, then is rebuilt from db2's snapshot while db1 keeps taking writes.
    const root = await db3.rootConnection();
    try {
      await root.query('SET SESSION sql_log_bin = 0');
      await root.query('DELETE FROM app.t WHERE id > 400');
    } finally {
      root.destroy();
    }
    const method = new BtrfsSnapshotMethod({
      subvolume,
      targetDir: join(mountPoint, 'snapshots'),
      server: { socket: db2.socket, user: 'root' },
    });
    const snapshot = await method.take({ id: 'clone1' });
    await db1.sql("INSERT INTO app.t VALUES (1001, 'after-snapshot')");
    const result = await cloneFromSnapshot(sandbox.config, 'db2', snapshot, 'db3', {
      subdir: 'data',
    });
    t.diagnostic(`btrfs clone: ${JSON.stringify(result)}`);
    assert.equal(result.gtidPosition, snapshot.gtidPosition);
    assert.ok(existsSync(join(db3.spec.dir, 'data', 'app', 't.ibd')));

    await waitFor(
      'db3 replicates writes made after the snapshot',
      async () => (await db3.sql('SELECT v FROM app.t WHERE id = 1001'))[0]?.v === 'after-snapshot',
      30_000,
    );
    const [status] = await db3.sql('SHOW SLAVE STATUS');
    assert.equal(status?.Slave_SQL_Running, 'Yes');
    assert.equal(Number((await db3.sql('SELECT @@global.read_only AS ro'))[0]?.ro), 1);
    const report = await runChecksum(sandbox.config, { tables: ['app.t'] });
    assert.deepEqual(
      report.hosts.map((host) => [host.host, host.status, host.diffs]),
      [
        ['db2', 'checked', { 'app.t': 0 }],
        ['db3', 'checked', { 'app.t': 0 }],
      ],
    );
    await method.remove(snapshot);
  },
);
