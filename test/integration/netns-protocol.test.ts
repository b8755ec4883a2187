/**
 * A rolling upgrade half done, both ways. First, one database host's agent still speaks the
 * previous exchange protocol (SWITCHYARD_PROTOCOL=1: it sends no protocol or version, as builds
 * from before the field did) beside a current manager and current agents. Then the reverse: every
 * agent upgraded, the manager not yet (it sends no protocol field and none of the fields added
 * since). Either way the cluster must work as usual, and a kill -9 of the writer must still fail
 * over, with no acknowledged write lost and never two writable hosts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openConnection } from '../../src/mysql/connect.js';
import { switchyardVersion } from '../../src/version.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { managerProcess } from '../support/ha-managers.js';
import { heldVips, NETNS_CLUSTER_BINARIES, startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { serverIdAt, startLoad } from '../support/load.js';

test('an agent one protocol behind: the cluster works, and a kill -9 of the writer fails over to its host', async (t) => {
  if (!requireRoot(t, 'network namespaces') || !requireBinaries(t, NETNS_CLUSTER_BINARIES)) return;
  const cluster = await startNetnsCluster(t, {
    masters: 2,
    replicas: 1,
    monitor: { interval: '500ms', connect_timeout: '500ms', failures_before_down: 3 },
    agentEnv: { db2: { SWITCHYARD_PROTOCOL: '1' } },
  });
  const { daemon } = await startDaemon(t, cluster.config);
  const roles = () => daemon.status().roles;
  const agentOf = (name: string) => daemon.status().hosts.find((host) => host.name === name)?.agent;
  const { writes, sampler } = startLoad(t, cluster, 20);
  await writes.pause();

  await t.test('mixed protocols work: VIPs placed, versions shown, no mismatch', async () => {
    await waitFor(
      'the writer VIP on db1',
      async () => (await heldVips(cluster, 'db1')).includes(cluster.writerVip),
      15_000,
    );
    assert.equal(
      await waitFor(
        'the writer VIP to reach db1',
        () => serverIdAt(cluster.writerVip, cluster.appUser),
        5000,
      ),
      1,
    );
    for (const [ip, holder] of Object.entries(roles().reader ?? {})) {
      assert.ok(holder, `reader ${ip} assigned`);
      await waitFor(
        `reader ${ip} on ${holder}`,
        async () => (await heldVips(cluster, holder as string)).includes(ip),
        10_000,
      );
    }
    await waitFor(
      'every agent up',
      async () => ['db1', 'db2', 'db3'].every((name) => agentOf(name)?.up),
      10_000,
    );
    assert.equal(agentOf('db1')?.version, switchyardVersion());
    assert.equal(agentOf('db1')?.protocol, 2);
    assert.equal(agentOf('db2')?.version, undefined, 'the old agent states no version');
    assert.equal(agentOf('db2')?.protocol, 1);
    const mismatch = (await daemon.metrics.agentProtocolMismatch.get()).values;
    assert.deepEqual(
      mismatch.filter((value) => value.value !== 0),
      [],
      'no host is reported as a protocol mismatch',
    );
    writes.resume();
    await waitFor('writes through the writer VIP', async () => writes.acked().length > 20, 10_000);
  });

  await t.test('kill -9 of the writer: db2, with the old agent, takes over', async () => {
    const killedAt = Date.now();
    await cluster.instance('db1').kill();
    await waitFor(
      'db2 to be the writer',
      async () => roles().writer?.[cluster.writerVip] === 'db2',
      30_000,
    );
    await waitFor(
      'a write on db2 through the VIP',
      async () => writes.firstAckOfWriteSentAfter(killedAt + 50),
      30_000,
    );
    assert.ok(
      (await heldVips(cluster, 'db2')).includes(cluster.writerVip),
      'the old-protocol agent raised the writer VIP',
    );
    assert.equal(agentOf('db2')?.lease?.holding, true, "db2's old agent holds the writer lease");
    t.diagnostic(
      `first write on db2 ${(writes.firstAckOfWriteSentAfter(killedAt + 50) as number) - killedAt} ms after the kill`,
    );
  });

  await t.test('no acknowledged write lost; never two writable hosts', async () => {
    await writes.stop();
    await sampler.stop();
    const connection = await openConnection({
      socketPath: cluster.instance('db2').socket,
      user: 'root',
    });
    try {
      assert.deepEqual(await writes.missingAcked(connection), []);
    } finally {
      connection.destroy();
    }
    const doubles = sampler.samples.filter((sample) => sample.writable.length > 1);
    assert.deepEqual(doubles.slice(0, 3), [], 'two writable hosts in a sample');
  });
});

test('a manager one protocol behind current agents: the cluster works, and a kill -9 of the writer fails over', async (t) => {
  if (!requireRoot(t, 'network namespaces') || !requireBinaries(t, NETNS_CLUSTER_BINARIES)) return;
  const cluster = await startNetnsCluster(t, {
    masters: 2,
    replicas: 1,
    monitor: { interval: '500ms', connect_timeout: '500ms', failures_before_down: 3 },
  });
  // A process of its own: the protocol it speaks is read from its environment at start.
  const manager = managerProcess(t, 'old-manager', cluster.config, { SWITCHYARD_PROTOCOL: '1' });
  manager.start();
  const status = async () => {
    const answer = await manager.api('GET', '/status').catch(() => undefined);
    return answer?.status === 200 ? answer.body : undefined;
  };
  const agentOf = async (name: string) =>
    ((await status())?.hosts as Array<{ name: string; agent?: any }> | undefined)?.find(
      (host) => host.name === name,
    )?.agent;
  const writerOf = async () => (await status())?.roles?.writer?.[cluster.writerVip];
  const { writes, sampler } = startLoad(t, cluster, 20);
  await writes.pause();

  await t.test(
    'mixed protocols work: VIPs placed, current agents answer, no mismatch',
    async () => {
      await waitFor(
        'the writer VIP on db1',
        async () => (await heldVips(cluster, 'db1')).includes(cluster.writerVip),
        30_000,
      );
      assert.equal(
        await waitFor(
          'the writer VIP to reach db1',
          () => serverIdAt(cluster.writerVip, cluster.appUser),
          5000,
        ),
        1,
      );
      for (const name of ['db1', 'db2', 'db3'])
        await waitFor(`${name}'s agent up`, async () => (await agentOf(name))?.up === true, 15_000);
      for (const name of ['db1', 'db2', 'db3']) {
        const agent = await agentOf(name);
        assert.equal(agent?.version, switchyardVersion(), `${name}'s agent states its build`);
        assert.equal(agent?.protocol, 2, `${name}'s agent speaks the current protocol`);
      }
      const metrics = await (await fetch(`${manager.url}/metrics`)).text();
      assert.deepEqual(
        metrics
          .split('\n')
          .filter(
            (line) => line.startsWith('switchyard_agent_protocol_mismatch{') && !/ 0$/.test(line),
          ),
        [],
        'no host is reported as a protocol mismatch',
      );
      // What an older manager sends holds no roles: the current agent's writer health check does
      // not answer for the writer until the manager is upgraded too (docs/upgrade.md says so).
      const health = await fetch(`http://${cluster.nsHost('db1').address}:9106/health/writer`);
      assert.equal(health.status, 503);
      assert.match(await health.text(), /not the writer per the manager/);
      writes.resume();
      await waitFor(
        'writes through the writer VIP',
        async () => writes.acked().length > 20,
        10_000,
      );
    },
  );

  await t.test('kill -9 of the writer: the older manager moves it to db2', async () => {
    const killedAt = Date.now();
    await cluster.instance('db1').kill();
    await waitFor('db2 to be the writer', async () => (await writerOf()) === 'db2', 30_000);
    await waitFor(
      'a write on db2 through the VIP',
      async () => writes.firstAckOfWriteSentAfter(killedAt + 50),
      30_000,
    );
    assert.ok(
      (await heldVips(cluster, 'db2')).includes(cluster.writerVip),
      "db2's agent raised the writer VIP",
    );
    await waitFor(
      "db2's agent to hold the writer lease",
      async () => (await agentOf('db2'))?.lease?.holding === true,
      10_000,
    );
    t.diagnostic(
      `first write on db2 ${(writes.firstAckOfWriteSentAfter(killedAt + 50) as number) - killedAt} ms after the kill; ` +
        manager
          .journal()
          .filter((entry) => entry.at >= killedAt)
          .slice(0, 20)
          .map(
            (entry) =>
              `+${entry.at - killedAt} ms ${entry.phase} ${entry.event} ${entry.host ?? ''} ${(entry.reason ?? '').slice(0, 80)}`,
          )
          .join(', '),
    );
  });

  await t.test('no acknowledged write lost; never two writable hosts', async () => {
    await writes.stop();
    await sampler.stop();
    const connection = await openConnection({
      socketPath: cluster.instance('db2').socket,
      user: 'root',
    });
    try {
      assert.deepEqual(await writes.missingAcked(connection), []);
    } finally {
      connection.destroy();
    }
    const doubles = sampler.samples.filter((sample) => sample.writable.length > 1);
    assert.deepEqual(doubles.slice(0, 3), [], 'two writable hosts in a sample');
  });
});
