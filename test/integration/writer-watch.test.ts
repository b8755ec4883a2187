import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

// The monitor interval is a minute, so only the broken connection to the writer can start the
// cycle that fails over within the test's 20 s: no scheduled cycle comes in time.
test('a killed writer is heard through its broken connection, not at the next interval', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const config = writeTestConfig(sandbox, 'watch.yml', (raw) => {
    raw.monitor = { ...FAST_MONITOR, interval: '60s' };
    raw.lease = '120s';
    raw.listen = `127.0.0.1:${sandbox.listenPort}`;
  });
  const db1 = sandbox.instance('db1');
  const { daemon, logFile } = await startDaemon(t, config);
  await waitFor(
    'db1 to hold the writer role',
    async () => daemon.status().roles.writer?.['127.0.1.100'] === 'db1',
  );
  await waitFor('the manager to hold an idle connection to db1', async () => {
    const sessions = await db1.sql(
      `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = '${config.mysql.user}' AND COMMAND = 'Sleep'`,
    );
    return Number(sessions[0]?.n) > 0;
  });

  const killedAt = Date.now();
  await db1.kill();
  try {
    await waitFor(
      'db2 to hold the writer role before the next scheduled cycle',
      async () => daemon.status().roles.writer?.['127.0.1.100'] === 'db2',
      20_000,
    );
  } catch (error) {
    for (const line of readFileSync(logFile, 'utf8').split('\n').slice(-30))
      t.diagnostic(line.slice(0, 600));
    throw error;
  }
  const decided = daemon.journal
    .read()
    .find((entry) => entry.event === 'failover.decided' && entry.at >= killedAt);
  assert.ok(decided, 'the failover decision is journaled');
  assert.match(decided.reason ?? '', /refusing connections/);
  const log = readFileSync(logFile, 'utf8');
  assert.match(log, /"event":"monitor.writer_connection_lost","host":"db1"/);
});
