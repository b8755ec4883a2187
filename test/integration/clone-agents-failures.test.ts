import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { CLI, cli, TRANSFER_BINARIES } from '../support/transfer-tests.js';

const NEEDS: Array<[string, string]> = [
  ...TRANSFER_BINARIES,
  ['mkfs.ext4', 'e2fsprogs'],
  ['losetup', 'mount'],
];

test(
  'clone through the agents: too little space is refused before anything moves; a source agent killed mid-stream leaves the target on its old datadir',
  { timeout: 300_000 },
  async (t) => {
    if (!requireRoot(t, 'network namespaces and loop devices') || !requireBinaries(t, NEEDS))
      return;
    const cluster = await startNetnsCluster(t, {
      masters: 2,
      replicas: 1,
      transfers: true,
      smallDisk: { host: 'db3', sizeMb: 400 },
    });
    const { stop: stopDaemon, daemon, url } = await startDaemon(t, cluster.config);
    // Stopped before the cluster is torn down: a monitor query to a deleted namespace would hang until TCP gives up (~15 min).
    try {
      const config = ['-c', cluster.configFile];
      await waitFor(
        'db3 ONLINE',
        async () => daemon.status().hosts.find((host) => host.name === 'db3')?.state === 'ONLINE',
        20_000,
      );
      assert.equal((await cli(['set-offline', 'db3', ...config])).code, 0);
      const db3 = cluster.instance('db3');
      await db3.sql(
        'SET STATEMENT sql_log_bin = 0 FOR CREATE TABLE mysql.old_db3_marker (id INT PRIMARY KEY)',
      );
      const datadir = join(cluster.instanceDir('db3'), 'data');
      const leftovers = () =>
        readdirSync(join(datadir, '..')).filter((name) => name.startsWith('data.'));

      // Leave about 8 MiB free on db3's filesystem.
      const filler = join(cluster.instanceDir('db3'), '..', 'filler');
      const fs = statfsSync(datadir);
      await promisify(execFile)('fallocate', [
        '-l',
        String(fs.bavail * fs.bsize - 8 * 1024 * 1024),
        filler,
      ]);
      const full = await cli(['clone', '--from', 'db2', '--to', 'db3', ...config]);
      assert.equal(full.code, 1, full.stderr);
      assert.match(full.stderr, /not enough free space .* estimated at .* MiB .* are free/);
      assert.match(full.stderr, /nothing was changed/);
      assert.deepEqual(leftovers(), [], 'no staging directory was made');
      assert.equal((await db3.sql("SHOW TABLES FROM mysql LIKE 'old_db3_marker'")).length, 1);
      rmSync(filler);

      // A slow stream (rate limit) so the source's agent can be killed while it runs.
      const clone = spawn(
        process.execPath,
        [CLI, 'clone', '--from', 'db2', '--to', 'db3', '--rate-limit', '256K', '--json', ...config],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      clone.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number>((resolve) =>
        clone.once('close', (code) => resolve(code ?? 1)),
      );
      await waitFor(
        'bytes arriving at db3',
        async () => {
          const response = await fetch(`${url}/api/v1/transfers`, {
            headers: { authorization: `Bearer ${cluster.token}` },
          });
          const { transfers } = (await response.json()) as {
            transfers: Array<{ progress: { wireBytes: number } }>;
          };
          return (transfers[0]?.progress.wireBytes ?? 0) > 0;
        },
        30_000,
      );
      await cluster.killAgent('db2');
      assert.equal(await exited, 1, 'the command fails');
      assert.match(stderr, /cut/);
      assert.match(stderr, /nothing was changed: the server is still running on its old datadir/);
      assert.equal(
        (await db3.sql("SHOW TABLES FROM mysql LIKE 'old_db3_marker'")).length,
        1,
        'db3 still runs on its old datadir',
      );
      assert.ok(existsSync(datadir));
      assert.deepEqual(leftovers(), [], 'the partial copy was removed');
      const story = daemon.journal.read().filter((entry) => entry.event === 'clone.transfer');
      t.diagnostic(
        `journal: ${story.map((entry) => `${entry.phase} ${entry.outcome ?? ''} ${entry.detail ?? entry.reason ?? ''}`).join(' / ')}`,
      );
      assert.deepEqual(
        story.map((entry) => [entry.phase, entry.outcome ?? null]),
        [
          ['before', null],
          ['after', 'failed'],
          ['before', null],
          ['after', 'failed'],
        ],
      );
      assert.match(story[3]?.detail ?? '', /cut .* still running on its old datadir/);
    } finally {
      await stopDaemon();
    }
  },
);
