import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readSecret } from '../../src/config/secrets.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { startSandbox, waitFor } from '../support/sandbox.js';
import { WritableSampler } from '../support/writable-sampler.js';

test('planned switchover: fence, catch-up, promote; never two writers; a lagging target times out and is undone', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const config = writeTestConfig(sandbox, 'switchover.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
    raw.listen = `127.0.0.1:${sandbox.listenPort}`;
    raw.actuator = { catchup_timeout: '2s' };
  });
  const password = readSecret({ file: config.mysql.password_file }, 'test');
  const db1 = sandbox.instance('db1');
  const db2 = sandbox.instance('db2');
  const db3 = sandbox.instance('db3');
  await db1.sql('CREATE DATABASE app');
  await db1.sql('CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)');
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

  // 1. The target cannot catch up (its SQL thread is stopped): the bounded wait times out, the fence is undone.
  await db2.sql('STOP SLAVE SQL_THREAD');
  await db1.sql('INSERT INTO app.t (v) VALUES (1)');
  const refused = await daemon.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(refused.ok, false, 'refused');
  t.diagnostic(`refused as expected: ${refused.detail}`);
  const [db1AfterUndo] = await db1.sql('SELECT @@read_only AS ro');
  assert.equal(Number(db1AfterUndo?.ro), 0, 'the old writer got its writes back');
  assert.equal(daemon.status().roles.writer?.['127.0.1.100'], 'db1');
  await db2.sql('START SLAVE SQL_THREAD');

  // 2. The real switchover.
  await waitFor(
    'db2 to catch up',
    async () => Number((await db2.sql('SELECT COUNT(*) AS n FROM app.t'))[0]?.n) === 1,
  );
  const started = Date.now();
  const moved = await daemon.engine.moveRole('writer', 'db2', { force: false });
  t.diagnostic(`switchover took ${Date.now() - started} ms: ${moved.detail}`);
  assert.equal(moved.ok, true, moved.detail);
  const [db1ro] = await db1.sql('SELECT @@read_only AS ro');
  const [db2ro] = await db2.sql('SELECT @@read_only AS ro');
  assert.deepEqual([Number(db1ro?.ro), Number(db2ro?.ro)], [1, 0]);
  await waitFor(
    'db3 to follow db2',
    async () => Number((await db3.sql('SHOW SLAVE STATUS'))[0]?.Master_Port) === db2.port,
  );
  const [rows] = await db2.sql('SELECT COUNT(*) AS n FROM app.t');
  assert.equal(Number(rows?.n), 1, 'the write made before the switchover is on the new writer');

  await sampler.stop();
  assert.deepEqual(sampler.splitBrainSamples(), [], 'never two writable hosts');
  const events = daemon.journal.read().map((entry) => `${entry.phase}:${entry.event}`);
  assert.ok(
    events.some((event) => /switchover/.test(event)),
    `switchover journaled: ${events.slice(-10).join(', ')}`,
  );
});
