import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MariabackupSnapshotMethod } from '../../src/snapshot/mariabackup.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { startSandbox } from '../support/sandbox.js';

test(
  'mariabackup snapshot: a prepared hot copy with the GTID position it corresponds to',
  { timeout: 180_000 },
  async (t) => {
    if (!requireBinaries(t, [...MARIADB, ['mariadb-backup', 'mariadb-backup']])) return;
    const sandbox = await startSandbox(t, { masters: 1, replicas: 0 });
    const db1 = sandbox.instance('db1');
    await db1.sql('CREATE DATABASE app');
    await db1.sql('CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10))');
    await db1.sql("INSERT INTO app.t VALUES (1, 'a'), (2, 'b')");
    const [row] = await db1.sql('SELECT @@global.gtid_binlog_pos AS pos');
    const targetDir = mkdtempSync(join(tmpdir(), 'switchyard-snap-'));
    t.after(() => rmSync(targetDir, { recursive: true, force: true }));

    const method = new MariabackupSnapshotMethod({
      targetDir,
      server: { socket: db1.socket, user: 'root' },
      datadir: join(db1.spec.dir, 'data'),
    });
    const info = await method.take({ id: 'snap1' });
    assert.equal(info.method, 'mariabackup');
    assert.equal(info.gtidPosition, row?.pos);
    assert.ok(existsSync(join(info.path, 'app', 't.ibd')));
    assert.ok((info.sizeBytes ?? 0) > 1_000_000);
    assert.deepEqual(
      (await method.list()).map((snapshot) => snapshot.id),
      ['snap1'],
    );
    await assert.rejects(method.take({ id: 'snap1' }), /already exists/);
    await method.remove(info);
    assert.deepEqual(await method.list(), []);
    assert.ok(!existsSync(info.path));
  },
);
