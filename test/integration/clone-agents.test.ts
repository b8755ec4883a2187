import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runChecksum } from '../../src/checksum/run.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { CLI, cli, TRANSFER_BINARIES, writeLoad } from '../support/transfer-tests.js';

const NEEDS = TRANSFER_BINARIES;

async function transfers(
  url: string,
  token: string,
): Promise<Array<{ id: string; done: boolean }>> {
  const response = await fetch(`${url}/api/v1/transfers`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return ((await response.json()) as { transfers: Array<{ id: string; done: boolean }> }).transfers;
}

test(
  'clone db3 from db2 through the agents while db1 takes writes; refusals change nothing',
  { timeout: 300_000 },
  async (t) => {
    if (!requireRoot(t, 'network namespaces') || !requireBinaries(t, NEEDS)) return;
    const cluster = await startNetnsCluster(t, { masters: 2, replicas: 1, transfers: true });
    const { stop: stopDaemon, daemon, url } = await startDaemon(t, cluster.config);
    // Stopped before the cluster is torn down: a monitor query to a deleted namespace would hang until TCP gives up (~15 min).
    try {
      const config = ['-c', cluster.configFile];
      await waitFor(
        'db1 to hold the writer role',
        async () => daemon.status().roles.writer?.[cluster.writerVip] === 'db1',
        20_000,
      );
      await waitFor(
        'db3 ONLINE',
        async () => daemon.status().hosts.find((host) => host.name === 'db3')?.state === 'ONLINE',
        20_000,
      );

      // Refused while db3 is ONLINE, and the writer is never a target.
      const online = await cli(['clone', '--from', 'db2', '--to', 'db3', ...config]);
      assert.equal(online.code, 1, online.stderr);
      assert.match(
        online.stderr,
        /db3 is ONLINE; only a host in ADMIN_OFFLINE or AWAITING_RECOVERY/,
      );
      const writer = await cli(['clone', '--from', 'db2', '--to', 'db1', ...config]);
      assert.equal(writer.code, 1, writer.stderr);
      assert.match(writer.stderr, /db1 is the writer/);

      assert.equal((await cli(['set-offline', 'db3', ...config])).code, 0);
      // Something only the old db3 has: gone after the clone, which proves the datadir was swapped.
      await cluster
        .instance('db3')
        .sql(
          'SET STATEMENT sql_log_bin = 0 FOR CREATE TABLE mysql.only_on_old_db3 (id INT PRIMARY KEY)',
        );
      const load = writeLoad(cluster);
      const clone = spawn(
        process.execPath,
        [CLI, 'clone', '--from', 'db2', '--to', 'db3', '--json', ...config],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      clone.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      clone.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number>((resolve) =>
        clone.once('close', (code) => resolve(code ?? 1)),
      );
      await waitFor(
        'the clone to start',
        async () => (await transfers(url, cluster.token)).length > 0,
        30_000,
      );
      const second = await cli(['clone', '--from', 'db2', '--to', 'db3', ...config]);
      assert.equal(second.code, 1, 'a second transfer into db3 is refused');
      assert.match(second.stderr, /already running/);
      const code = await exited;
      const rows = await load.stop();
      assert.equal(code, 0, `clone failed: ${stderr}\n${stdout}`);
      const lines = stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.ok(
        lines.some((line) => line.phase === 'receiving' || Number(line.raw_bytes) > 0),
        'progress lines were printed',
      );
      const last = lines[lines.length - 1] as { ok: boolean; result: { gtidPosition: string } };
      assert.equal(last.ok, true);
      t.diagnostic(`cloned at GTID ${last.result.gtidPosition} while ${rows} rows were written`);

      const db3 = cluster.instance('db3');
      const [status] = await db3.sql('SHOW SLAVE STATUS');
      assert.equal(
        status?.Master_Host,
        cluster.nsHost('db1').address,
        'db3 replicates from the writer',
      );
      assert.equal(
        Number((await db3.sql('SELECT @@read_only AS ro'))[0]?.ro),
        1,
        'db3 came up read-only',
      );
      assert.equal(
        (await db3.sql("SHOW TABLES FROM mysql LIKE 'only_on_old_db3'")).length,
        0,
        'db3 runs on the new copy',
      );
      // Its binlog history starts at the copy's position (not empty): promoted, it would continue the sequence.
      const [firstLog] = await db3.sql('SHOW BINARY LOGS');
      const gtidList = (
        await db3.sql(`SHOW BINLOG EVENTS IN '${String(firstLog?.Log_name)}' LIMIT 3`)
      ).find((event) => event.Event_type === 'Gtid_list');
      assert.ok(
        String(gtidList?.Info).includes(last.result.gtidPosition),
        `binlog starts at ${String(gtidList?.Info)}`,
      );
      assert.ok(
        !existsSync(`${join(cluster.instanceDir('db3'), 'data')}.incoming`),
        'no staging left',
      );
      await waitFor(
        'db3 to have every row',
        async () => Number((await db3.sql('SELECT COUNT(*) AS n FROM app.writes'))[0]?.n) === rows,
        30_000,
      );
      const report = await runChecksum(cluster.config);
      assert.equal(report.differences, 0, JSON.stringify(report.hosts));
      assert.ok(report.hosts.some((host) => host.host === 'db3' && host.status === 'checked'));

      const bytes = (await daemon.metrics.transferBytesTotal.get()).values.find(
        (value) => value.labels.host === 'db3' && value.labels.operation === 'clone',
      );
      assert.ok((bytes?.value ?? 0) > 0, 'switchyard_transfer_bytes_total counted the copy');
      assert.equal((await daemon.metrics.transferInProgress.get()).values[0]?.value, 0);
      const journal = daemon.journal.read().filter((entry) => entry.event === 'clone.transfer');
      assert.deepEqual(
        journal.map((entry) => [entry.phase, entry.outcome ?? null]),
        [
          ['before', null],
          ['after', 'ok'],
        ],
      );
    } finally {
      await stopDaemon();
    }
  },
);
