import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { listBackups } from '../../src/backup/backup.js';
import { runChecksum } from '../../src/checksum/run.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { CLI, cli, TRANSFER_BINARIES, writeLoad } from '../support/transfer-tests.js';

const NEEDS = TRANSFER_BINARIES;

test(
  'backup db2 into the manager while db1 takes writes, a backup cut by a killed agent leaves nothing, restore onto db3 through its agent; db2 restored from the backup_dir of another agent, the ring to it mended',
  { timeout: 300_000 },
  async (t) => {
    if (!requireRoot(t, 'network namespaces') || !requireBinaries(t, NEEDS)) return;
    const cluster = await startNetnsCluster(t, {
      masters: 2,
      replicas: 1,
      transfers: true,
      managerConfig: { backup: { dir: 'backups' } },
    });
    const { stop: stopDaemon, daemon, url } = await startDaemon(t, cluster.config);
    // Stopped before the cluster is torn down: a monitor query to a deleted namespace would hang until TCP gives up (~15 min).
    try {
      const config = ['-c', cluster.configFile];
      const backups = join(cluster.dir, 'backups');
      await waitFor(
        'db3 ONLINE',
        async () => daemon.status().hosts.find((host) => host.name === 'db3')?.state === 'ONLINE',
        20_000,
      );

      // backup.dir is never created on the fly: a missing mount would otherwise fill another disk.
      const missing = await cli(['backup', 'db2', ...config]);
      assert.equal(missing.code, 1, missing.stderr);
      assert.match(missing.stderr, /backup\.dir .*backups does not exist .*nothing was changed/);
      mkdirSync(backups);

      const load = writeLoad(cluster);
      const taken = await cli(['backup', 'db2', '--json', ...config]);
      assert.equal(taken.code, 0, taken.stderr);
      const lines = taken.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.ok(
        lines.some((line) => Number(line.raw_bytes) > 0),
        'progress lines were printed',
      );
      const [entry, ...others] = listBackups(cluster.config);
      assert.equal(others.length, 0);
      assert.equal(entry?.host, 'db2');
      assert.equal(entry?.kind, 'full');
      assert.equal(entry?.format, 'mariabackup');
      assert.match(entry?.gtidPosition ?? '', /^\d+-\d+-\d+/);
      assert.ok((entry?.sizeBytes ?? 0) > 1024 * 1024);
      const bytes = await daemon.metrics.transferBytesTotal.get();
      assert.ok(
        (bytes.values.find(
          (value) => value.labels.operation === 'backup' && value.labels.host === 'db2',
        )?.value ?? 0) > 0,
        'switchyard_transfer_bytes_total{operation="backup",host="db2"} counted the stream',
      );

      // A slow backup (rate limit); a second one from db2 is refused; then db2's agent dies mid-stream.
      // The copy is about 1 MB on the wire: at 256K it ended in ~5 s, sometimes before the CLI runs
      // below (each a fresh process, seconds from sources under load) got to it; 64K gives ~16 s.
      const slow = spawn(
        process.execPath,
        [CLI, 'backup', 'db2', '--rate-limit', '64K', '--json', ...config],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      slow.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number>((resolve) =>
        slow.once('close', (code) => resolve(code ?? 1)),
      );
      await waitFor(
        'bytes arriving at the manager',
        async () => {
          const response = await fetch(`${url}/api/v1/transfers`, {
            headers: { authorization: `Bearer ${cluster.token}` },
          });
          const { transfers } = (await response.json()) as {
            transfers: Array<{ done: boolean; progress: { wireBytes: number } }>;
          };
          return transfers.some((job) => !job.done && job.progress.wireBytes > 0);
        },
        30_000,
      );
      assert.ok(
        readdirSync(join(backups, 'db2')).some((name) => name.startsWith('.incoming-')),
        'the copy arrives in a staging directory',
      );
      const second = await cli(['backup', 'db2', ...config]);
      assert.equal(second.code, 1, 'a second transfer from db2 is refused');
      assert.match(second.stderr, /already running with db2/);
      await cluster.killAgent('db2');
      assert.equal(await exited, 1, 'the command fails');
      assert.match(stderr, /backup of db2 failed: .*cut.*partial copy was removed/);
      assert.deepEqual(
        readdirSync(join(backups, 'db2')).filter((name) => name.startsWith('.')),
        [],
        'the partial copy was removed',
      );
      assert.equal(listBackups(cluster.config).length, 1, 'the cut backup is not in the catalogue');
      const story = daemon.journal.read().filter((item) => item.event === 'backup.transfer');
      t.diagnostic(
        `journal: ${story.map((item) => `${item.phase} ${item.outcome ?? ''} ${item.detail ?? item.reason ?? ''}`).join(' / ')}`,
      );
      assert.deepEqual(
        story.map((item) => [item.phase, item.outcome ?? null]),
        [
          ['before', null],
          ['after', 'ok'],
          ['before', null],
          ['after', 'failed'],
        ],
      );
      assert.match(story[3]?.detail ?? '', /cut/);
      await cluster.startAgent('db2');

      // Restore refusals, nothing changed: the writer, a host in service.
      const writer = await cli(['restore', 'db1', ...config]);
      assert.equal(writer.code, 1, writer.stderr);
      assert.match(writer.stderr, /db1 is the writer/);
      const online = await cli(['restore', 'db3', ...config]);
      assert.equal(online.code, 1, online.stderr);
      assert.match(online.stderr, /db3 is ONLINE/);

      assert.equal((await cli(['set-offline', 'db3', ...config])).code, 0);
      const db3 = cluster.instance('db3');
      await db3.sql(
        'SET STATEMENT sql_log_bin = 0 FOR CREATE TABLE mysql.only_on_old_db3 (id INT PRIMARY KEY)',
      );
      const restored = await cli(['restore', 'db3', ...config]);
      assert.equal(restored.code, 0, restored.stderr);
      assert.match(restored.stdout, /db3 restored from db2\//);
      const rows = await load.stop();
      const [status] = await db3.sql('SHOW SLAVE STATUS');
      assert.equal(
        status?.Master_Host,
        cluster.nsHost('db1').address,
        'db3 replicates from the writer',
      );
      assert.equal(Number((await db3.sql('SELECT @@read_only AS ro'))[0]?.ro), 1);
      assert.equal(
        (await db3.sql("SHOW TABLES FROM mysql LIKE 'only_on_old_db3'")).length,
        0,
        'db3 runs on the restored copy',
      );
      await waitFor(
        'db3 to have every row',
        async () => Number((await db3.sql('SELECT COUNT(*) AS n FROM app.writes'))[0]?.n) === rows,
        30_000,
      );
      const report = await runChecksum(cluster.config);
      assert.equal(report.differences, 0, JSON.stringify(report.hosts));
      assert.ok(report.hosts.some((host) => host.host === 'db3' && host.status === 'checked'));
      assert.equal(
        daemon.status().hosts.find((host) => host.name === 'db3')?.state,
        'ADMIN_OFFLINE',
        'the restored host stays out of service until set-online',
      );

      // Into another agent's snapshot.backup_dir (agent to agent), then restored from there.
      const toAgent = await cli(['backup', 'db2', '--to-agent', 'db1', '--json', ...config]);
      assert.equal(toAgent.code, 0, toAgent.stderr);
      const kept = /holds backup (\S+) at GTID/.exec(toAgent.stdout)?.[1];
      assert.ok(kept, toAgent.stdout);
      assert.ok(
        readdirSync(join(cluster.instanceDir('db1'), 'agent-backups', 'db2')).includes(
          kept.split('/')[1] as string,
        ),
        "the backup is in db1 agent's backup_dir",
      );
      // Onto db2, the passive master: the writer db1 replicates from it (master-master). db1's IO
      // thread reconnects as soon as db2 restarts on the copy, asks for a position the copy has
      // not reached yet and stops with 1236; the manager starts it again once db2 has caught up.
      assert.equal((await cli(['set-offline', 'db2', ...config])).code, 0);
      const db2 = cluster.instance('db2');
      await db2.sql(
        'SET STATEMENT sql_log_bin = 0 FOR CREATE TABLE mysql.only_on_old_db2 (id INT PRIMARY KEY)',
      );
      const fromAgent = await cli([
        'restore',
        'db2',
        '--from-agent',
        'db1',
        '--backup',
        kept,
        ...config,
      ]);
      assert.equal(fromAgent.code, 0, fromAgent.stderr);
      assert.match(fromAgent.stdout, /db2 restored from db2\/\S+ kept by db1/);
      assert.equal(
        (await db2.sql("SHOW TABLES FROM mysql LIKE 'only_on_old_db2'")).length,
        0,
        'db2 runs on the copy kept by db1',
      );
      const [back] = await cluster.instance('db1').sql('SHOW SLAVE STATUS');
      assert.equal(back?.Master_Host, cluster.nsHost('db2').address);
      assert.equal(
        back?.Slave_IO_Running,
        'Yes',
        `the writer's channel from db2 runs: ${String(back?.Last_IO_Errno)} ${String(back?.Last_IO_Error)}`,
      );
      const reconnects = daemon.journal
        .read()
        .filter((item) => item.event === 'replication.reconnect');
      t.diagnostic(`reconnects: ${reconnects.map((item) => item.detail).join(' / ')}`);
      assert.ok(
        reconnects.every((item) => item.host === 'db1' && item.outcome === 'ok'),
        'only db1 replicates from db2, and it runs again',
      );
      await cluster
        .instance('db1')
        .sql('INSERT INTO app.writes VALUES (?, ?)', [rows + 1, Date.now()]);
      for (const host of [db2, db3])
        await waitFor(
          'db2 and db3 to replicate from the writer',
          async () =>
            Number((await host.sql('SELECT COUNT(*) AS n FROM app.writes'))[0]?.n) === rows + 1,
          30_000,
        );
      assert.deepEqual(
        daemon.journal
          .read()
          .filter((item) => item.event === 'restore.transfer')
          .map((item) => [item.phase, item.outcome ?? null]),
        [
          ['before', null],
          ['after', 'ok'],
          ['before', null],
          ['after', 'ok'],
        ],
      );
      assert.equal((await daemon.metrics.transferInProgress.get()).values[0]?.value, 0);
    } finally {
      await stopDaemon();
    }
  },
);
