/**
 * A rolling upgrade as docs/upgrade.md tells the operator to run it, under continuous write load:
 * every database host's agent stopped and started again one at a time (the writer's last), then
 * the follower manager, then the leader, of an HA pair on etcd. Each piece must be back in service
 * before the next goes (the leading manager saw the agent fail and answer again, the writer's
 * lease reaches it; a restarted manager follows again, a new leader exchanges with every agent).
 * Nothing of it may cost a failover or a switchover (the writer role never leaves db1, no host
 * leaves ONLINE, no agent's lease lapses or fences), lose an acknowledged write, or leave two
 * writable hosts.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { readConfigFile, type LoadedConfig } from '../../src/config/load.js';
import { openConnection } from '../../src/mysql/connect.js';
import { findFreePortRange } from '../../src/sandbox/ports.js';
import type { StatusSnapshot } from '../../src/api/status-routes.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { ETCD, startTestEtcd } from '../support/etcd.js';
import { managerProcess, type ManagerProcess } from '../support/ha-managers.js';
import { startLoad } from '../support/load.js';
import {
  heldVips,
  NETNS_CLUSTER_BINARIES,
  startNetnsCluster,
  type NetnsCluster,
} from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';

const HA_LEASE = '2s';
/** The writer's last: its restart is the one that could cost the writer. */
const AGENT_ORDER = ['db3', 'db2', 'db1'];

function managerConfig(
  cluster: NetnsCluster,
  name: string,
  port: number,
  endpoints: string[],
): LoadedConfig {
  const raw = yaml.load(readFileSync(cluster.configFile, 'utf8')) as Record<string, any>;
  raw.listen = `127.0.0.1:${port}`;
  raw.state_dir = `state-${name}`;
  raw.ha = { etcd: { endpoints, prefix: '/switchyard-rolling' }, lease: HA_LEASE };
  const file = join(cluster.dir, `${name}.yml`);
  writeFileSync(file, yaml.dump(raw));
  const { config, problems } = readConfigFile(file);
  if (!config) throw new Error(JSON.stringify(problems));
  return config;
}

async function leaderOf(managers: ManagerProcess[]): Promise<ManagerProcess | undefined> {
  const leaders: ManagerProcess[] = [];
  for (const manager of managers)
    if (manager.alive() && (await manager.leader()) === 1) leaders.push(manager);
  assert.ok(leaders.length <= 1, `two managers lead: ${leaders.map((m) => m.name).join(', ')}`);
  return leaders[0];
}

async function statusOf(manager: ManagerProcess): Promise<StatusSnapshot | undefined> {
  try {
    const answer = await manager.api('GET', '/status');
    return answer.status === 200 ? (answer.body as StatusSnapshot) : undefined;
  } catch {
    return undefined;
  }
}

/** Events that mean the writer moved or was about to: none may appear. */
const WRITER_MOVES = /^(pre_|post_)?(failover|switchover)/;

test(
  'a rolling restart of every agent (the writer’s too) and both managers under write load: no failover, no lost write, never two writers',
  { timeout: 240_000 },
  async (t) => {
    if (
      !requireRoot(t, 'network namespaces') ||
      !requireBinaries(t, [...NETNS_CLUSTER_BINARIES, ...ETCD])
    )
      return;
    const started = Date.now();
    const etcd = await startTestEtcd(t);
    const cluster = await startNetnsCluster(t, { masters: 2, replicas: 1 });
    const hosts = [...cluster.instances.keys()];
    const port = await findFreePortRange(2);
    const managers = ['m1', 'm2'].map((name, index) =>
      managerProcess(t, name, managerConfig(cluster, name, port + index, etcd.endpoints)),
    );
    for (const manager of managers) manager.start();
    const leaderStatus = async () => {
      const leader = await leaderOf(managers);
      return leader ? statusOf(leader) : undefined;
    };
    const agentOf = (status: StatusSnapshot | undefined, host: string) =>
      status?.hosts.find((entry) => entry.name === host)?.agent;
    /** Every agent answers the leader and db1's agent holds the writer lease, reaching every voter. */
    const inService = async () => {
      const status = await leaderStatus();
      if (!status || status.roles.writer?.[cluster.writerVip] !== 'db1') return false;
      if (!hosts.every((host) => agentOf(status, host)?.up)) return false;
      const lease = agentOf(status, 'db1')?.lease;
      return (
        lease?.holding === true &&
        hosts.every((host) => host === 'db1' || lease.reached.includes(host))
      );
    };

    await waitFor('a leader', () => leaderOf(managers), 30_000, 100);
    await waitFor(
      'the writer VIP on db1',
      async () => (await heldVips(cluster, 'db1')).includes(cluster.writerVip),
      30_000,
      200,
    );
    await waitFor('every agent in service', inService, 30_000, 200);
    const { writes, sampler } = startLoad(t, cluster);
    await waitFor('writes through the writer VIP', async () => writes.acked().length > 20, 10_000);
    const loadFrom = Date.now();

    // Watches the leader's view all along: the writer role and every host's state.
    const seen: Array<{ at: number; writer: string | null | undefined; states: string }> = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const status = await leaderStatus().catch(() => undefined);
        if (status)
          seen.push({
            at: Date.now(),
            writer: status.roles.writer?.[cluster.writerVip],
            states: status.hosts.map((host) => `${host.name}=${host.state}`).join(' '),
          });
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    t.after(async () => {
      watching = false;
      await watcher;
    });

    const steps: string[] = [];
    const step = (text: string) => {
      steps.push(`${((Date.now() - loadFrom) / 1000).toFixed(1)} s ${text}`);
    };
    const wroteSince = async (label: string, since: number) => {
      await waitFor(`a write after ${label}`, async () => writes.firstAckAfter(since), 10_000, 20);
    };

    await t.test('agents restarted one by one, the writer’s last', async () => {
      for (const host of AGENT_ORDER) {
        const stoppedAt = Date.now();
        await cluster.killAgent(host, 'SIGTERM');
        step(`${host}'s agent stopped`);
        // Proof that the restart is seen: the leader notices the agent gone before it returns.
        await waitFor(
          `the leader to see ${host}'s agent down`,
          async () => agentOf(await leaderStatus(), host)?.up === false,
          10_000,
          50,
        );
        await cluster.startAgent(host);
        step(`${host}'s agent started`);
        await waitFor(`${host}'s agent back in service`, inService, 20_000, 100);
        step(`${host}'s agent back in service`);
        await wroteSince(`${host}'s agent restart`, stoppedAt);
      }
    });

    await t.test('the follower manager, then the leader, restarted one by one', async () => {
      const first = (await leaderOf(managers)) as ManagerProcess;
      const follower = managers.find((manager) => manager !== first) as ManagerProcess;
      assert.ok(first, 'a leader before the managers restart');

      // The follower: its restart must change nothing; back when it answers as a follower again.
      let stoppedAt = Date.now();
      await follower.kill('SIGTERM');
      step(`follower ${follower.name} stopped`);
      follower.start();
      await waitFor(
        `${follower.name} to follow again`,
        async () => (await follower.leader()) === 0,
        30_000,
        100,
      );
      step(`follower ${follower.name} follows again`);
      assert.equal(await leaderOf(managers), first, 'the leader kept leading');
      await waitFor('every agent in service', inService, 20_000, 100);
      await wroteSince(`${follower.name}'s restart`, stoppedAt);

      // The leader: its clean stop hands leadership over; the new leader reaches every agent.
      stoppedAt = Date.now();
      await first.kill('SIGTERM');
      step(`leader ${first.name} stopped`);
      await waitFor(
        `${follower.name} to lead`,
        async () => (await follower.leader()) === 1,
        30_000,
        50,
      );
      step(`${follower.name} leads`);
      first.start();
      await waitFor(
        `${first.name} to follow`,
        async () => (await first.leader()) === 0,
        30_000,
        100,
      );
      step(`${first.name} follows`);
      await waitFor('every agent in service under the new leader', inService, 20_000, 100);
      step('every agent in service under the new leader');
      await wroteSince(`${first.name}'s restart`, stoppedAt);
    });

    await t.test('no failover, no lost write, never two writable hosts', async () => {
      // A little load after the last step: a late reaction would show here.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      watching = false;
      await watcher;
      await writes.stop();
      await sampler.stop();
      t.diagnostic(steps.join('; '));
      const pause = writes.longestPause(loadFrom);
      t.diagnostic(
        `${writes.acked().length} writes acknowledged, longest pause ${pause.pauseMs} ms from ${(((pause.from ?? loadFrom) - loadFrom) / 1000).toFixed(1)} s; ` +
          `${seen.length} status samples; total ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );

      const moves = managers.flatMap((manager) =>
        manager
          .journal()
          .filter((entry) => WRITER_MOVES.test(entry.event))
          .map(
            (entry) => `${manager.name}: ${entry.event} ${entry.host ?? ''} ${entry.reason ?? ''}`,
          ),
      );
      assert.deepEqual(moves, [], 'no failover or switchover in any journal');
      assert.deepEqual(
        seen.filter((sample) => sample.writer !== 'db1').slice(0, 3),
        [],
        'the writer role never left db1',
      );
      const allOnline = hosts.map((host) => `${host}=ONLINE`).join(' ');
      assert.deepEqual(
        seen.filter((sample) => sample.states !== allOnline).slice(0, 3),
        [],
        'every host stayed ONLINE',
      );
      for (const host of hosts) {
        const fences = readFileSync(join(cluster.dir, `agent-${host}.log`), 'utf8')
          .split('\n')
          .filter((line) => /"event":"(lease\.lapsed|fence\.proved|fence\.unproved)"/.test(line));
        assert.deepEqual(fences, [], `${host}'s agent neither lost its lease nor fenced`);
      }

      const connection = await openConnection({
        socketPath: cluster.instance('db1').socket,
        user: 'root',
      });
      try {
        assert.deepEqual(await writes.missingAcked(connection), [], 'no acknowledged write lost');
      } finally {
        connection.destroy();
      }
      assert.deepEqual(
        sampler.splitBrainSamples().slice(0, 3),
        [],
        'two writable hosts in a sample',
      );
      assert.deepEqual(
        sampler.samples
          .filter((sample) => sample.writable.some((host) => host !== 'db1'))
          .slice(0, 3),
        [],
        'no host but db1 was ever writable',
      );
      const unwritable = sampler.samples.filter((sample) => sample.writable.length === 0);
      t.diagnostic(
        `${unwritable.length} of ${sampler.samples.length} samples saw no writable host`,
      );
    });
  },
);
