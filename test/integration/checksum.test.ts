import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { runChecksum } from '../../src/checksum/run.js';
import { NO_KEY_REASON } from '../../src/checksum/tables.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

/** A sandbox (2 masters, 1 replica) whose writer db1 has database app with one table of many rows. */
async function sandboxWithTable(t: TestContext, create: string, insertSeries: string) {
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const db1 = sandbox.instance('db1');
  await db1.sql('CREATE DATABASE app');
  await db1.sql(create);
  const loader = await db1.rootConnection();
  try {
    // A recursive CTE beyond the default 1000 iterations.
    await loader.query('SET SESSION max_recursive_iterations = 100000');
    await loader.query(insertSeries);
  } finally {
    loader.destroy();
  }
  return sandbox;
}

async function diffMetric(
  metrics: SwitchyardMetrics,
  host: string,
  table: string,
): Promise<number | undefined> {
  const values = (await metrics.checksumDiffChunks.get()).values;
  return values.find((entry) => entry.labels.host === host && entry.labels.table === table)?.value;
}

test(
  'replicated checksum: clean cluster, a changed row on db3 and a deleted row on db2',
  { timeout: 300_000 },
  async (t) => {
    if (!requireBinaries(t, MARIADB)) return;
    const sandbox = await sandboxWithTable(
      t,
      'CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL, note VARCHAR(20) NULL)',
      "INSERT INTO app.items WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 20000) SELECT n, CONCAT('item-', n), n % 97, IF(n % 10 = 0, NULL, 'x') FROM s",
    );
    const db1 = sandbox.instance('db1');
    await db1.sql(
      'CREATE TABLE app.pairs (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, UNIQUE KEY ab (a, b))',
    );
    await db1.sql("INSERT INTO app.pairs VALUES (1,'x',1),(1,'y',2),(2,'x',3),(3,'z',NULL)");
    await db1.sql('CREATE TABLE app.loose (v INT)');
    await db1.sql('INSERT INTO app.loose VALUES (1), (2)');
    for (const name of ['db2', 'db3']) {
      await waitFor(
        `${name} has the rows`,
        async () =>
          Number(
            (await sandbox.instance(name).sql('SELECT COUNT(*) AS n FROM app.items'))[0]?.n,
          ) === 20000,
        60_000,
      );
    }

    const metrics = new SwitchyardMetrics('sandbox', { processMetrics: false });
    const clean = await runChecksum(sandbox.config, { metrics });
    t.diagnostic(
      `clean run: ${JSON.stringify(clean.tables)} in ${Date.parse(clean.finishedAt) - Date.parse(clean.startedAt)} ms`,
    );
    assert.equal(clean.writer, 'db1');
    assert.equal(clean.differences, 0);
    const items = clean.tables.find((table) => table.table === 'app.items');
    assert.equal(items?.status, 'checked');
    assert.equal(items?.rows, 20000);
    assert.equal(clean.tables.find((table) => table.table === 'app.pairs')?.status, 'checked');
    assert.deepEqual(
      clean.tables.find((table) => table.table === 'app.loose'),
      { table: 'app.loose', status: 'skipped', chunks: 0, rows: 0, reason: NO_KEY_REASON },
    );
    assert.deepEqual(
      clean.hosts.map((host) => [host.host, host.status, host.diffs]),
      [
        ['db2', 'checked', { 'app.items': 0, 'app.pairs': 0 }],
        ['db3', 'checked', { 'app.items': 0, 'app.pairs': 0 }],
      ],
    );
    assert.equal(await diffMetric(metrics, 'db3', 'app.items'), 0);
    assert.ok(((await metrics.checksumLastRun.get()).values[0]?.value ?? 0) > 0);

    const cleanCli = await cli(['checksum', '-c', sandbox.manifest.configFile, '--json']);
    assert.equal(cleanCli.code, 0, cleanCli.stderr);
    assert.equal(JSON.parse(cleanCli.stdout).differences, 0);
    // --json: progress as JSON lines on stderr, the report alone on stdout.
    const progressLines = cleanCli.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.event === 'checksum.progress');
    assert.ok(progressLines.length >= 2, `progress lines on stderr: ${cleanCli.stderr}`);
    assert.deepEqual(
      (({ tables_done, tables_total, rows, done, eta_seconds }) => ({
        tables_done,
        tables_total,
        rows,
        done,
        eta_seconds,
      }))(progressLines.at(-1) as Record<string, unknown>),
      { tables_done: 3, tables_total: 3, rows: 20004, done: true, eta_seconds: 0 },
    );

    // Drift behind replication's back: a changed row on db3, a deleted row on db2.
    const db3 = await sandbox.instance('db3').rootConnection();
    try {
      await db3.query('SET SESSION sql_log_bin = 0');
      await db3.query('UPDATE app.items SET qty = qty + 1 WHERE id = 12345');
    } finally {
      db3.destroy();
    }
    const db2 = await sandbox.instance('db2').rootConnection();
    try {
      await db2.query('SET SESSION sql_log_bin = 0');
      await db2.query('DELETE FROM app.items WHERE id = 777');
      await db2.query("UPDATE app.pairs SET v = 9 WHERE a = 1 AND b = 'y'");
    } finally {
      db2.destroy();
    }

    const drifted = await runChecksum(sandbox.config, { metrics });
    t.diagnostic(`drifted run: ${JSON.stringify(drifted.hosts)}`);
    const byHost = Object.fromEntries(drifted.hosts.map((host) => [host.host, host.diffs]));
    assert.equal(byHost.db3?.['app.items'], 1);
    assert.equal(byHost.db3?.['app.pairs'], 0);
    assert.equal(byHost.db2?.['app.items'], 1);
    assert.equal(byHost.db2?.['app.pairs'], 1);
    assert.equal(drifted.differences, 3);
    assert.equal(await diffMetric(metrics, 'db3', 'app.items'), 1);
    assert.equal(await diffMetric(metrics, 'db2', 'app.items'), 1);
    assert.equal(await diffMetric(metrics, 'db3', 'app.pairs'), 0);

    const driftCli = await cli([
      'checksum',
      '-c',
      sandbox.manifest.configFile,
      '--tables',
      'app.items',
    ]);
    assert.equal(driftCli.code, 1, driftCli.stderr);
    assert.match(driftCli.stdout, /db3 app\.items: 1 differing chunk/);
    assert.match(driftCli.stdout, /db2 app\.items: 1 differing chunk/);
    assert.doesNotMatch(driftCli.stdout, /app\.pairs/);
    assert.doesNotMatch(
      driftCli.stderr,
      /progress/,
      'no progress output without a terminal or --json',
    );

    // Back-off on heartbeat lag: db3's SQL thread stopped (Seconds_Behind_Master is NULL then, so
    // a back-off on it would push on). The writer's heartbeat row, renewed as the daemon's writer
    // would, ages on db3; beyond checksum.max_lag the run pauses, and gives up after maxBackoffMs.
    const schema = sandbox.config.heartbeat.schema;
    await sandbox.instance('db3').sql('STOP SLAVE SQL_THREAD');
    await db1.sql(
      `REPLACE INTO \`${schema}\`.heartbeat (server_id, ts) VALUES (@@server_id, UTC_TIMESTAMP(6))`,
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const lagConfig = {
      ...sandbox.config,
      checksum: { ...sandbox.config.checksum, max_lag: 1000 },
    };
    const backedOff = await runChecksum(lagConfig, {
      metrics,
      tables: ['app.pairs'],
      maxBackoffMs: 2500,
      replicaWaitTimeoutMs: 1500,
    });
    t.diagnostic(
      `run with db3's SQL thread stopped: ${JSON.stringify(backedOff.tables)} ${JSON.stringify(backedOff.hosts)}`,
    );
    assert.equal(backedOff.tables[0]?.status, 'failed');
    assert.match(
      backedOff.tables[0]?.reason ?? '',
      /replicas stayed lagged beyond 1000 ms: db3 \d+\.\ds/,
    );
    assert.doesNotMatch(backedOff.tables[0]?.reason ?? '', /db2/, 'db2 is not lagging');
    await sandbox.instance('db3').sql('START SLAVE SQL_THREAD');

    // No stale series: every series is a (replica, table) pair the last run compared. db3 killed:
    // its earlier difference on app.items is not exported as if it were current.
    await sandbox.instance('db3').kill();
    const withoutDb3 = await runChecksum(sandbox.config, { metrics, tables: ['app.items'] });
    assert.deepEqual(
      withoutDb3.hosts.map((host) => [host.host, host.status]),
      [
        ['db2', 'checked'],
        ['db3', 'unreachable'],
      ],
    );
    assert.equal(await diffMetric(metrics, 'db2', 'app.items'), 1);
    assert.equal(
      await diffMetric(metrics, 'db3', 'app.items'),
      undefined,
      'the unreachable replica exports no checksum series',
    );
    assert.equal(
      await diffMetric(metrics, 'db2', 'app.pairs'),
      undefined,
      'a table this run did not check exports no series',
    );
  },
);

// The first pass reads each chunk on every host at once, a replica at its own position (at or
// after the writer's), so a row written in between makes the chunk differ. Such a chunk is checked
// again the exact way (statement-based, under the writer's shared locks) before anything is
// reported: under live writes no false difference, and a real one still found.
test(
  'checksum under live writes: chunks written meanwhile are re-checked, no false difference, a real one found',
  { timeout: 300_000 },
  async (t) => {
    if (!requireBinaries(t, MARIADB)) return;
    const sandbox = await sandboxWithTable(
      t,
      'CREATE TABLE app.hot (id INT PRIMARY KEY, v BIGINT NOT NULL, at TIMESTAMP(6) NULL)',
      'INSERT INTO app.hot WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 30000) SELECT n, n, NOW(6) FROM s',
    );
    const db1 = sandbox.instance('db1');
    for (const name of ['db2', 'db3'])
      await waitFor(
        `${name} has the rows`,
        async () =>
          Number((await sandbox.instance(name).sql('SELECT COUNT(*) AS n FROM app.hot'))[0]?.n) ===
          30000,
        60_000,
      );

    // The load: one row updated as fast as three connections can, and rows spread over the table.
    let writing = true;
    let updates = 0;
    const writers = await Promise.all([1, 2, 3].map(() => db1.rootConnection()));
    const loads = writers.map((writer, index) =>
      (async () => {
        while (writing) {
          await writer.query('UPDATE app.hot SET v = v + 1, at = NOW(6) WHERE id = 15000');
          await writer.query('UPDATE app.hot SET v = v + 1 WHERE id = ?', [
            1 + ((updates * 7919 + index) % 29000),
          ]);
          updates += 1;
        }
        return undefined;
      })().catch((error: Error) => error),
    );
    const stopLoad = async () => {
      writing = false;
      const errors = await Promise.all(loads);
      for (const writer of writers) writer.destroy();
      return errors.filter((error) => error !== undefined);
    };
    t.after(stopLoad);
    await waitFor('the load to run', async () => updates > 5, 10_000);

    const live = await runChecksum(sandbox.config, { tables: ['app.hot'] });
    const hot = live.tables[0];
    t.diagnostic(
      `under ${updates} update pairs: ${JSON.stringify(live.tables)} ${JSON.stringify(live.hosts)}`,
    );
    assert.equal(hot?.status, 'checked', hot?.reason);
    assert.equal(hot?.rows, 30000);
    assert.ok((hot?.rechecked ?? 0) >= 1, 'the chunk of the hot row differed in the first pass');
    assert.equal(live.differences, 0, 'no false difference under live writes');
    assert.equal(live.complete, true);

    // A real difference behind replication's back, far from the hot row, while the load goes on.
    const db3 = await sandbox.instance('db3').rootConnection();
    try {
      await db3.query('SET SESSION sql_log_bin = 0');
      await db3.query('UPDATE app.hot SET v = v - 1000000 WHERE id = 29999');
    } finally {
      db3.destroy();
    }
    const drifted = await runChecksum(sandbox.config, { tables: ['app.hot'] });
    t.diagnostic(`drifted: ${JSON.stringify(drifted.tables)} ${JSON.stringify(drifted.hosts)}`);
    assert.deepEqual(
      drifted.hosts.map((host) => [host.host, host.status, host.diffs]),
      [
        ['db2', 'checked', { 'app.hot': 0 }],
        ['db3', 'checked', { 'app.hot': 1 }],
      ],
    );
    assert.equal(drifted.differences, 1);
    assert.deepEqual(
      (await stopLoad()).map((error) => error.message),
      [],
      'the application wrote on unhindered',
    );
  },
);
