import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { cli, TRANSFER_BINARIES } from '../support/transfer-tests.js';

const NEEDS: Array<[string, string]> = [...TRANSFER_BINARIES, ['openssl', 'openssl']];

test(
  'clone through agents that speak HTTPS with client certificates (manager to agent and agent to agent)',
  { timeout: 300_000 },
  async (t) => {
    if (!requireRoot(t, 'network namespaces') || !requireBinaries(t, NEEDS)) return;
    const cluster = await startNetnsCluster(t, {
      masters: 2,
      replicas: 1,
      transfers: true,
      tls: true,
    });
    const { stop: stopDaemon, daemon } = await startDaemon(t, cluster.config);
    // Stopped before the cluster is torn down: a monitor query to a deleted namespace would hang until TCP gives up.
    try {
      await waitFor(
        'db3 ONLINE',
        async () => daemon.status().hosts.find((host) => host.name === 'db3')?.state === 'ONLINE',
        30_000,
      );
      assert.ok(cluster.config.hosts.db3?.agent?.startsWith('https://'), 'the agents are HTTPS');
      assert.equal((await cli(['set-offline', 'db3', '-c', cluster.configFile])).code, 0);
      const clone = await cli([
        'clone',
        '--from',
        'db2',
        '--to',
        'db3',
        '--json',
        '-c',
        cluster.configFile,
      ]);
      assert.equal(clone.code, 0, `${clone.stderr}\n${clone.stdout}`);
      const [status] = await cluster.instance('db3').sql('SHOW SLAVE STATUS');
      assert.equal(status?.Master_Host, cluster.nsHost('db1').address);
    } finally {
      await stopDaemon();
    }
  },
);
