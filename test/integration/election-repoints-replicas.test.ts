/**
 * Issue 22, item 7: a manager that starts (fresh state_dir) while the configured writer is
 * already dead elects db2; db3 (replica_of: writer) must then replicate from db2, not keep
 * pointing at the dead db1. Server defaults (slave_net_timeout 60 s), no state placed by hand.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

test('the configured writer dead before the manager starts: db2 is elected, db3 is repointed to it, and writes on db2 reach db3', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const config = writeTestConfig(sandbox, 'election.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
    raw.listen = `127.0.0.1:${sandbox.listenPort}`;
    raw.state_dir = 'state-election';
  });
  const db1 = sandbox.instance('db1');
  const db2 = sandbox.instance('db2');
  const db3 = sandbox.instance('db3');
  await db1.sql('CREATE DATABASE app');
  await db1.sql('CREATE TABLE app.t (id INT PRIMARY KEY)');
  await db1.sql('INSERT INTO app.t VALUES (1)');
  await waitFor(
    'db2 and db3 to have the first row',
    async () =>
      Number((await db2.sql('SELECT COUNT(*) AS n FROM app.t'))[0]?.n) === 1 &&
      Number((await db3.sql('SELECT COUNT(*) AS n FROM app.t'))[0]?.n) === 1,
    20_000,
  );
  await db1.kill();

  const { daemon } = await startDaemon(t, config);
  await waitFor(
    'db2 to be elected',
    async () => daemon.status().roles.writer?.['127.0.1.100'] === 'db2',
    30_000,
  );
  const journal = () =>
    daemon.journal
      .read()
      .map((entry) => `${entry.phase} ${entry.event} ${entry.host ?? ''} ${entry.reason ?? ''}`);
  try {
    await waitFor(
      'db3 to replicate from db2',
      async () => {
        const [status] = await db3.sql('SHOW SLAVE STATUS');
        return Number(status?.Master_Port) === db2.port && status?.Slave_IO_Running === 'Yes';
      },
      20_000,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}\njournal:\n${journal().join('\n')}`, {
      cause: error,
    });
  }
  const repoint = daemon.journal
    .read()
    .find((entry) => entry.phase === 'before' && entry.event === 'mysql.repoint');
  assert.equal(repoint?.host, 'db3');
  assert.match(repoint?.reason ?? '', /replicates from db1, not from the writer db2/);

  await db2.sql('INSERT INTO app.t VALUES (2)');
  await waitFor(
    "db2's write on db3",
    async () => Number((await db3.sql('SELECT COUNT(*) AS n FROM app.t WHERE id = 2'))[0]?.n) === 1,
    20_000,
  );
});
