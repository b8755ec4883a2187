import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runChecksum } from '../../src/checksum/run.js';
import { cloneHost } from '../../src/clone/clone.js';
import { MemoryJournal } from '../../src/journal/journal.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

test(
  'clone db1 -> db3 with mariabackup: db3 replicates from the writer and checksums clean',
  { timeout: 300_000 },
  async (t) => {
    if (
      !requireBinaries(t, [
        ...MARIADB,
        ['mariadb-backup', 'mariadb-backup'],
        ['mbstream', 'mariadb-backup'],
      ])
    )
      return;
    const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
    const db1 = sandbox.instance('db1');
    const db3 = sandbox.instance('db3');
    await db1.sql('CREATE DATABASE app');
    await db1.sql('CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))');
    for (let batch = 0; batch < 10; batch++) {
      const values = Array.from(
        { length: 200 },
        (_, index) => `(${batch * 200 + index + 1}, 'v${index}')`,
      ).join(',');
      await db1.sql(`INSERT INTO app.t VALUES ${values}`);
    }
    await waitFor(
      'db3 has the rows',
      async () => Number((await db3.sql('SELECT COUNT(*) AS n FROM app.t'))[0]?.n) === 2000,
      60_000,
    );
    // Break db3 behind replication's back, the way a host ends up needing a clone.
    const root = await db3.rootConnection();
    try {
      await root.query('SET SESSION sql_log_bin = 0');
      await root.query('DELETE FROM app.t WHERE id <= 100');
    } finally {
      root.destroy();
    }
    const before = await runChecksum(sandbox.config, { tables: ['app.t'] });
    assert.equal(before.hosts.find((host) => host.host === 'db3')?.diffs['app.t'], 1);

    await assert.rejects(cloneHost(sandbox.config, 'db3', 'db1'), /db1 is the writer/);
    await assert.rejects(cloneHost(sandbox.config, 'db1', 'db1'), /same host/);

    const journal = new MemoryJournal();
    let updates = 0;
    const result = await cloneHost(sandbox.config, 'db1', 'db3', {
      journal,
      onProgress: () => updates++,
    });
    t.diagnostic(`clone: ${JSON.stringify(result)}, ${updates} progress updates`);
    assert.equal(result.source, 'db1');
    assert.ok(result.rawBytes > result.compressedBytes && result.compressedBytes > 0);
    assert.ok(updates > 0);
    assert.deepEqual(
      journal.read().map((entry) => [entry.phase, entry.event, entry.outcome]),
      [
        ['before', 'clone.run', undefined],
        ['after', 'clone.run', 'ok'],
      ],
    );

    await db1.sql("INSERT INTO app.t VALUES (5001, 'after-clone')");
    await waitFor(
      'db3 replicates a write made after the clone',
      async () => (await db3.sql('SELECT v FROM app.t WHERE id = 5001'))[0]?.v === 'after-clone',
      30_000,
    );
    const [status] = await db3.sql('SHOW SLAVE STATUS');
    assert.equal(status?.Slave_IO_Running, 'Yes');
    assert.equal(status?.Slave_SQL_Running, 'Yes');
    assert.equal(status?.Using_Gtid, 'Slave_Pos');
    assert.equal(Number((await db3.sql('SELECT @@global.read_only AS ro'))[0]?.ro), 1);

    const after = await runChecksum(sandbox.config, { tables: ['app.t'] });
    assert.deepEqual(
      after.hosts.map((host) => [host.host, host.status, host.diffs]),
      [
        ['db2', 'checked', { 'app.t': 0 }],
        ['db3', 'checked', { 'app.t': 0 }],
      ],
    );
  },
);
