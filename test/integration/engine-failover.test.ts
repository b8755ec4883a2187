import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { readSecret } from '../../src/config/secrets.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { startSandbox, waitFor } from '../support/sandbox.js';
import { WritableSampler } from '../support/writable-sampler.js';
import { WriteProbe } from '../support/write-probe.js';

test('kill -9 of the writer: db2 is promoted, db3 follows it, never two writers; the old writer waits for set-online', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const config = writeTestConfig(sandbox, 'failover.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
    raw.listen = `127.0.0.1:${sandbox.listenPort}`;
  });
  const password = readSecret({ file: config.mysql.password_file }, 'test');
  const db1 = sandbox.instance('db1');
  const db2 = sandbox.instance('db2');
  const db3 = sandbox.instance('db3');
  await db1.sql('CREATE DATABASE app');
  await db1.sql('CREATE TABLE app.writes (id BIGINT PRIMARY KEY, at BIGINT)');
  await db1.sql("CREATE USER app@'%' IDENTIFIED BY 'app'");
  await db1.sql("GRANT ALL ON app.* TO app@'%'");

  const { daemon } = await startDaemon(t, config);
  await waitFor(
    'db1 to hold the writer role',
    async () => daemon.status().roles.writer?.['127.0.1.100'] === 'db1',
  );

  const endpoints = Object.fromEntries(
    sandbox.manifest.hosts.map((host) => [
      host.name,
      { host: '127.0.0.1', port: host.port, user: config.mysql.user, password },
    ]),
  );
  const sampler = new WritableSampler(endpoints);
  sampler.start();
  t.after(() => sampler.stop());
  // The application writes to db1's port; after the failover it is pointed at db2 (no VIP on loopback).
  const before = new WriteProbe({
    host: '127.0.0.1',
    port: db1.port,
    user: 'app',
    password: 'app',
    table: 'app.writes',
  });
  before.start();
  await new Promise((resolve) => setTimeout(resolve, 1000));

  const killedAt = Date.now();
  await db1.kill();
  await before.stop();
  try {
    await waitFor(
      'db2 to hold the writer role',
      async () => daemon.status().roles.writer?.['127.0.1.100'] === 'db2',
      20_000,
    );
  } catch (error) {
    const since = daemon.journal.read().filter((entry) => entry.at >= killedAt);
    for (const entry of since
      .filter((item) => !item.event.startsWith('role.') && !item.event.startsWith('vip.'))
      .slice(0, 40)) {
      t.diagnostic(
        `${entry.at - killedAt}ms ${entry.phase} ${entry.event} ${entry.host ?? ''}: ${(entry.reason ?? entry.detail ?? '').slice(-600)}`,
      );
    }
    t.diagnostic(
      JSON.stringify(
        daemon
          .status()
          .hosts.map((host) => [
            host.name,
            host.state,
            host.reason,
            host.ioRunning,
            host.replicatingFrom,
          ]),
      ),
    );
    throw error;
  }
  const promotedAfterMs = Date.now() - killedAt;
  t.diagnostic(
    `writer role moved to db2 ${promotedAfterMs} ms after kill -9 (monitor interval 300 ms, 3 failures)`,
  );

  const [db2ReadOnly] = await db2.sql('SELECT @@read_only AS ro');
  assert.equal(Number(db2ReadOnly?.ro), 0, 'db2 is writable');
  await waitFor('db3 to replicate from db2', async () => {
    const [status] = await db3.sql('SHOW SLAVE STATUS');
    return (
      Number(status?.Master_Port) === db2.port &&
      status?.Slave_IO_Running === 'Yes' &&
      status?.Slave_SQL_Running === 'Yes'
    );
  });
  await db2.sql('INSERT INTO app.writes VALUES (1000000, 0)');
  await waitFor(
    'a write on db2 to reach db3',
    async () => (await db3.sql('SELECT id FROM app.writes WHERE id=1000000')).length === 1,
  );

  // Acknowledged writes on the old writer that reached db2 before it died survive; report the rest honestly.
  const connection = await db2.rootConnection();
  const missing = await before.missingAcked(connection);
  connection.destroy();
  t.diagnostic(
    `acknowledged writes before the kill: ${before.acked().length}, missing on the new writer: ${missing.length} (asynchronous replication)`,
  );

  // Never two writable hosts through the failover. The sampler stops here: db1 comes back below
  // with a config that leaves it writable, on purpose.
  await waitFor('enough read_only samples', async () => sampler.samples.length > 50, 20_000);
  await sampler.stop();
  assert.ok(sampler.samples.length > 50, `enough read_only samples (${sampler.samples.length})`);
  assert.deepEqual(sampler.splitBrainSamples(), [], 'never two writable hosts in any sample');

  // The old writer comes back: read-only, AWAITING_RECOVERY, until the operator says otherwise.
  // Its my.cnf says read_only=OFF for this restart (a host whose config forgot it), so the
  // read_only=ON read back below is Switchyard's doing, not the sandbox's my.cnf.
  const cnf = readFileSync(db1.configFile, 'utf8');
  const writableCnf = cnf.replace(/^read_only=ON$/m, 'read_only=OFF');
  assert.notEqual(writableCnf, cnf, "db1's my.cnf had read_only=ON to take out");
  writeFileSync(db1.configFile, writableCnf);
  const restartedAt = Date.now();
  await db1.start();
  await waitFor(
    'db1 to be AWAITING_RECOVERY',
    async () =>
      daemon.status().hosts.find((host) => host.name === 'db1')?.state === 'AWAITING_RECOVERY',
    20_000,
  );
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const db1Status = daemon.status().hosts.find((host) => host.name === 'db1');
  assert.equal(db1Status?.state, 'AWAITING_RECOVERY', 'still waiting for the operator');
  const [db1ReadOnly] = await db1.sql('SELECT @@read_only AS ro');
  assert.equal(Number(db1ReadOnly?.ro), 1, 'the old writer is read-only');
  const enforced = daemon.journal
    .read()
    .filter(
      (entry) =>
        entry.at >= restartedAt &&
        entry.host === 'db1' &&
        entry.event === 'mysql.set_read_only' &&
        entry.phase === 'after' &&
        entry.outcome === 'ok',
    );
  assert.ok(enforced.length > 0, 'Switchyard set read_only=ON on the returning old writer');
  assert.equal(
    daemon.status().roles.writer?.['127.0.1.100'],
    'db2',
    'the writer role stays on db2',
  );

  const journal = daemon.journal.read();
  assert.ok(
    journal.some((entry) => /failover/.test(entry.event)),
    'the failover is journaled',
  );
});
