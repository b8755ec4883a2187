import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { MYSQL_PORT, NETNS_CLUSTER_BINARIES, startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';

test('the manager cut off from a live writer while replicas still see it: no failover, and the journal says why', async (t) => {
  if (
    !requireRoot(t, 'network namespaces and iptables') ||
    !requireBinaries(t, NETNS_CLUSTER_BINARIES)
  )
    return;
  const cluster = await startNetnsCluster(t, { masters: 2, replicas: 1 });
  const { daemon } = await startDaemon(t, cluster.config);
  await waitFor(
    'db1 to hold the writer role and the VIP',
    async () => daemon.status().roles.writer?.[cluster.writerVip] === 'db1',
    20_000,
  );

  // Only the manager (the bridge address) is cut off from db1's MySQL port; db2 and db3 still reach it.
  const db1 = cluster.nsHost('db1');
  await db1.exec('iptables', [
    '-A',
    'INPUT',
    '-s',
    cluster.network.bridgeAddress,
    '-p',
    'tcp',
    '--dport',
    String(MYSQL_PORT),
    '-j',
    'DROP',
  ]);
  t.after(() => db1.exec('iptables', ['-F', 'INPUT']).catch(() => undefined));

  await waitFor(
    'db1 to be HARD_OFFLINE for the manager',
    async () => daemon.status().hosts.find((host) => host.name === 'db1')?.state === 'HARD_OFFLINE',
    20_000,
  );
  // Give the engine several cycles in which it could (wrongly) fail over.
  await new Promise((resolve) => setTimeout(resolve, 3000));

  assert.equal(
    daemon.status().roles.writer?.[cluster.writerVip],
    'db1',
    'the writer role did not move',
  );
  const readOnly = await Promise.all(
    ['db1', 'db2', 'db3'].map(async (name) =>
      Number((await cluster.instance(name).sql('SELECT @@read_only AS ro'))[0]?.ro),
    ),
  );
  assert.deepEqual(readOnly, [0, 1, 1], 'db1 is still the only writer');
  const [db3Status] = await cluster.instance('db3').sql('SHOW SLAVE STATUS');
  assert.equal(db3Status?.Slave_IO_Running, 'Yes', 'db3 still replicates from db1');
  const why = daemon.journal
    .read()
    .filter((entry) => /still see it/.test(`${entry.reason ?? ''} ${entry.detail ?? ''}`));
  assert.ok(why.length > 0, 'the journal says the other hosts still see the writer');
  t.diagnostic(`journal: ${why[0]?.reason ?? why[0]?.detail}`);
});
