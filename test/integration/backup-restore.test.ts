import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { listBackups, restoreBackup, takeBackup } from '../../src/backup/backup.js';
import type { LoadedConfig } from '../../src/config/load.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

test(
  'backup full + incremental of a replica, list, restore after damage; the writer is refused',
  { timeout: 300_000 },
  async (t) => {
    if (!requireBinaries(t, [...MARIADB, ['mariadb-backup', 'mariadb-backup']])) return;
    const sandbox = await startSandbox(t, { masters: 1, replicas: 1 });
    const config: LoadedConfig = {
      ...sandbox.config,
      backup: { dir: 'backups', method: 'mariabackup', retention: { keep_full: 7 } },
    };
    const db1 = sandbox.instance('db1');
    const db2 = sandbox.instance('db2');
    await db1.sql('CREATE DATABASE app');
    await db1.sql('CREATE TABLE app.t (id INT PRIMARY KEY, v INT)');
    await db1.sql('INSERT INTO app.t VALUES (1, 1), (2, 2)');
    const count = async () => Number((await db2.sql('SELECT COUNT(*) AS n FROM app.t'))[0]?.n);
    await waitFor('db2 has 2 rows', async () => (await count()) === 2, 30_000);

    let clock = Date.parse('2026-01-01T00:00:00Z');
    const now = () => new Date((clock += 60_000));
    const fullProgress: Array<{ bytes: number; totalBytes: number }> = [];
    const full = await takeBackup(
      config,
      'db2',
      {},
      { now, onProgress: (progress) => fullProgress.push(progress) },
    );
    assert.equal(full.kind, 'full');
    // Progress: reported while copying and once after; the last figure is the backup's size, the
    // estimate is the datadir's (larger: logs are not copied).
    assert.ok(fullProgress.length >= 2, `progress reported (${fullProgress.length} times)`);
    assert.equal(fullProgress.at(-1)?.bytes, full.sizeBytes);
    assert.ok((fullProgress.at(-1)?.totalBytes ?? 0) > 0, 'a full backup has an estimated total');
    assert.equal(full.path, join(sandbox.dir, 'backups', 'db2', '2026-01-01T00-01-00-000Z-full'));
    await db1.sql('INSERT INTO app.t VALUES (3, 3)');
    await waitFor('db2 has 3 rows', async () => (await count()) === 3, 30_000);
    const incProgress: Array<{ bytes: number; totalBytes: number }> = [];
    const inc = await takeBackup(
      config,
      'db2',
      { incremental: true },
      { now, onProgress: (progress) => incProgress.push(progress) },
    );
    assert.equal(incProgress.at(-1)?.bytes, inc.sizeBytes);
    assert.equal(incProgress.at(-1)?.totalBytes, 0, 'an incremental has no total to estimate');
    assert.equal(inc.kind, 'incremental');
    assert.equal(inc.base, full.path);
    assert.deepEqual(
      listBackups(config).map((backup) => [backup.host, backup.kind]),
      [
        ['db2', 'full'],
        ['db2', 'incremental'],
      ],
    );

    await assert.rejects(restoreBackup(config, 'db1', inc.path), /db1 is the writer/);

    // Damage db2, then restore it from the incremental chain.
    const root = await db2.rootConnection();
    try {
      await root.query('SET SESSION sql_log_bin = 0');
      await root.query('DELETE FROM app.t');
    } finally {
      root.destroy();
    }
    await db1.sql('INSERT INTO app.t VALUES (4, 4)');
    const restored = await restoreBackup(config, 'db2', inc.path, { now });
    assert.equal(restored.gtidPosition, inc.gtidPosition);
    assert.ok(existsSync(restored.aside));
    await waitFor('restored db2 catches up to 4 rows', async () => (await count()) === 4, 30_000);
    assert.equal(Number((await db2.sql('SELECT @@global.read_only AS ro'))[0]?.ro), 1);
  },
);
