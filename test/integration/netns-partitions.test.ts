/**
 * Issue 11's partitions on namespace hosts with MariaDB's defaults: what must NOT fail over
 * (one replica cut off; the manager stopped while a replica is in maintenance, and restarted),
 * what must (the writer's host silent while a replica's agent is also down: the remaining
 * observers decide), and a bounded randomized fault loop with a fixed, printed seed that checks
 * after every step: never two writable hosts, never the writer VIP on two hosts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import {
  heldVips,
  MYSQL_PORT,
  NETNS_CLUSTER_BINARIES,
  type NetnsCluster,
  startNetnsCluster,
} from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { rejoinIfErrant, TRANSFER_BINARIES } from '../support/transfer-tests.js';
import { WritableSampler } from '../support/writable-sampler.js';

async function readOnlyOf(cluster: NetnsCluster, name: string): Promise<number> {
  return Number((await cluster.instance(name).sql('SELECT @@read_only AS ro'))[0]?.ro);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('partitions that must not fail over, and one that must with an observer down', async (t) => {
  if (
    !requireRoot(t, 'network namespaces and iptables') ||
    !requireBinaries(t, NETNS_CLUSTER_BINARIES)
  )
    return;
  const cluster = await startNetnsCluster(t, {
    masters: 2,
    replicas: 1,
    monitor: { interval: '500ms', connect_timeout: '500ms', failures_before_down: 3 },
  });
  let running = await startDaemon(t, cluster.config);
  const writerOf = () => running.daemon.status().roles.writer?.[cluster.writerVip] ?? null;
  await waitFor(
    'db1 writer with its VIP',
    async () =>
      writerOf() === 'db1' && (await heldVips(cluster, 'db1')).includes(cluster.writerVip),
    20_000,
  );

  await t.test('one replica cut off from the writer: no failover', async () => {
    const db3 = cluster.nsHost('db3');
    await db3.exec('iptables', ['-A', 'OUTPUT', '-d', cluster.nsHost('db1').address, '-j', 'DROP']);
    await sleep(5000);
    await db3.exec('iptables', ['-F', 'OUTPUT']);
    assert.equal(writerOf(), 'db1');
    assert.equal(await readOnlyOf(cluster, 'db1'), 0);
  });

  await t.test(
    'the manager stopped while a replica is in maintenance: the writer keeps its lease; also across a manager restart',
    async () => {
      const offline = await running.daemon.engine.setOffline('db3');
      assert.equal(offline.ok, true, offline.detail);
      await sleep(1500); // an exchange tells the writer's agent that db3 no longer votes
      await running.stop();
      await sleep(2 * cluster.config.lease + 1000);
      assert.equal(
        await readOnlyOf(cluster, 'db1'),
        0,
        'the writer fenced itself although only the manager and a host in maintenance were gone',
      );
      assert.ok((await heldVips(cluster, 'db1')).includes(cluster.writerVip));
      running = await startDaemon(t, cluster.config, 'daemon-2.log');
      await waitFor(
        'the restarted manager to run cycles',
        async () => running.daemon.status().lastCycleAt !== undefined,
        20_000,
      );
      await sleep(3000);
      assert.equal(writerOf(), 'db1');
      assert.equal(await readOnlyOf(cluster, 'db1'), 0);
      const online = await running.daemon.engine.setOnline('db3');
      assert.equal(online.ok, true, online.detail);
    },
  );

  await t.test(
    "the writer's host goes silent while db3's agent is down: db2 decides, failover",
    async () => {
      await cluster.killAgent('db3');
      await cluster.nsHost('db1').exec('ip', ['link', 'set', 'eth0', 'down']);
      await waitFor('db2 to take over', async () => writerOf() === 'db2', 30_000);
      const decided = running.daemon.journal
        .read()
        .find((entry) => entry.event === 'failover.decided');
      assert.match(decided?.reason ?? '', /not asked: db3/);
      await cluster.startAgent('db3');
      await cluster.nsHost('db1').exec('ip', ['link', 'set', 'eth0', 'up']);
      await waitFor(
        'db1 back, held',
        async () =>
          running.daemon.status().hosts.find((host) => host.name === 'db1')?.state ===
          'AWAITING_RECOVERY',
        30_000,
      );
      await waitFor(
        'db1 without the writer VIP',
        async () => !(await heldVips(cluster, 'db1')).includes(cluster.writerVip),
        10_000,
      );
    },
  );
});

/** A small deterministic PRNG (mulberry32): the seed is printed so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

test('randomized fault loop (bounded, fixed seed): never two writable hosts, never the writer VIP on two hosts', async (t) => {
  if (
    !requireRoot(t, 'network namespaces and iptables') ||
    !requireBinaries(t, [...NETNS_CLUSTER_BINARIES, ...TRANSFER_BINARIES])
  )
    return;
  const seed = Number(process.env.SWITCHYARD_FAULT_SEED ?? 20261126);
  const steps = Number(process.env.SWITCHYARD_FAULT_STEPS ?? 6);
  t.diagnostic(`seed ${seed}, ${steps} steps (replay with SWITCHYARD_FAULT_SEED=${seed})`);
  const random = prng(seed);
  const cluster = await startNetnsCluster(t, {
    masters: 2,
    replicas: 1,
    preferFirst: false,
    // A killed writer may take along a commit it never sent (asynchronous replication): the
    // repair then rejoins it, which needs transfers and a backup dir for the saved events.
    transfers: true,
    managerConfig: { backup: { dir: 'backups' } },
    monitor: { interval: '500ms', connect_timeout: '500ms', failures_before_down: 3 },
  });
  const { daemon, logFile } = await startDaemon(t, cluster.config);
  const writerOf = () => daemon.status().roles.writer?.[cluster.writerVip] ?? null;
  await waitFor('db1 writer', async () => writerOf() === 'db1', 20_000);
  const sampler = new WritableSampler(
    Object.fromEntries(
      ['db1', 'db2', 'db3'].map((name) => [
        name,
        { socketPath: cluster.instance(name).socket, user: 'root' },
      ]),
    ),
    25,
  );
  sampler.start();
  let vipDoubles = 0;
  let watching = true;
  const vipWatch = (async () => {
    while (watching) {
      const holders = await Promise.all(
        ['db1', 'db2', 'db3'].map(async (name) =>
          (await heldVips(cluster, name).catch((): string[] => [])).includes(cluster.writerVip),
        ),
      );
      if (holders.filter(Boolean).length > 1) vipDoubles += 1;
      await sleep(50);
    }
  })();
  t.after(async () => {
    watching = false;
    await vipWatch;
    await sampler.stop();
  });

  const repair = async (host: string) => {
    await waitFor(
      `${host} reachable and held`,
      async () => {
        // An isolated writer's agent may have stopped its server (the fence's escalation when
        // read_only=ON could not be proved in time, as on a loaded machine): started again, as
        // an operator would.
        if (!cluster.instance(host).isRunning()) await cluster.instance(host).start();
        const record = daemon.status().hosts.find((entry) => entry.name === host);
        return record?.state === 'AWAITING_RECOVERY' && record.up === true;
      },
      30_000,
    ).catch((error: Error) => {
      const record = daemon.status().hosts.find((entry) => entry.name === host);
      const transitions = readFileSync(logFile, 'utf8')
        .split('\n')
        .filter(
          (line) => line.includes('"host.state_changed"') && line.includes(`"host":"${host}"`),
        )
        .slice(-6);
      throw new Error(
        `${error.message}; ${host} is ${record?.state} (${record?.reason}), up ${record?.up}; last transitions:\n${transitions.join('\n')}`,
      );
    });
    await waitFor(
      `${host} replicating`,
      async () =>
        (await cluster.instance(host).sql('SHOW SLAVE STATUS'))[0]?.Slave_IO_Running === 'Yes',
      30_000,
    );
    // One failed check (a loaded machine) refuses set-online for an unreachable host: asked
    // again while the monitor sees it, as an operator would.
    let online = await daemon.engine.setOnline(host);
    for (
      let attempt = 0;
      !online.ok && attempt < 5 && /not reachable/.test(online.detail);
      attempt++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      online = await daemon.engine.setOnline(host);
    }
    // The killed writer's last commit (a heartbeat) may be binlogged but never sent.
    await rejoinIfErrant(host, online, {
      config: ['-c', cluster.configFile],
      isOnline: () =>
        daemon.status().hosts.find((entry) => entry.name === host)?.state === 'ONLINE',
      diagnostic: (message) => t.diagnostic(message),
    });
  };
  const faults = [
    'kill writer',
    'link down writer',
    'cut manager only',
    'restart replica',
  ] as const;
  for (let step = 1; step <= steps; step++) {
    const fault = faults[Math.floor(random() * faults.length)] as (typeof faults)[number];
    const writer = writerOf() as string;
    const other = writer === 'db1' ? 'db2' : 'db1';
    t.diagnostic(`step ${step}: ${fault} (writer ${writer})`);
    if (fault === 'kill writer') {
      await cluster.instance(writer).kill();
      await waitFor(`${other} to take over`, async () => writerOf() === other, 30_000);
      await cluster.instance(writer).start();
      await repair(writer);
    } else if (fault === 'link down writer') {
      await cluster.nsHost(writer).exec('ip', ['link', 'set', 'eth0', 'down']);
      await waitFor(`${other} to take over`, async () => writerOf() === other, 30_000);
      await cluster.nsHost(writer).exec('ip', ['link', 'set', 'eth0', 'up']);
      await repair(writer);
    } else if (fault === 'cut manager only') {
      const host = cluster.nsHost(writer);
      await host.exec('iptables', [
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
      await sleep(4000);
      await host.exec('iptables', ['-F', 'INPUT']);
      assert.equal(writerOf(), writer, 'a manager-only cut moved the writer');
      await waitFor(
        `${writer} answering again`,
        async () => daemon.status().hosts.find((entry) => entry.name === writer)?.up === true,
        20_000,
      );
      const record = daemon.status().hosts.find((entry) => entry.name === writer);
      if (record?.state === 'AWAITING_RECOVERY') await daemon.engine.setOnline(writer);
    } else {
      const before = daemon.engine.snapshot().hosts.db3;
      await cluster.instance('db3').kill();
      await cluster.instance('db3').start();
      const [uptime] = await cluster.instance('db3').sql("SHOW GLOBAL STATUS LIKE 'Uptime'");
      t.diagnostic(
        `db3 restarted: uptime now ${uptime?.Value}; record before: ${JSON.stringify(before)}`,
      );
      await repair('db3');
    }
    // A moment of the repaired cluster before the next fault, no longer: a server restarted again
    // seconds after its last restart must still be told restarted (src/monitor/restart.ts), which
    // this loop once had to wait out because uptime and connection ids did not show it.
    await sleep(500);
    const doubles = sampler.samples.filter((sample) => sample.writable.length > 1);
    assert.deepEqual(doubles.slice(0, 3), [], `after step ${step} (${fault}): two writable hosts`);
    assert.equal(vipDoubles, 0, `after step ${step} (${fault}): the writer VIP on two hosts`);
  }
});
