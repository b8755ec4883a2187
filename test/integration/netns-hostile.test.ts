/**
 * Issue 23's "done when": under slow-body and idle-socket attacks at once, the manager's /healthz
 * answers and a kill -9 of the writer fails over as fast as without them. One namespace cluster
 * with server defaults, faults in sequence: a kill -9 without attacks (the baseline), repair,
 * then the same kill -9 under both attacks. Attack traffic goes only to 127.0.0.1 and to the
 * test's own namespace hosts, from extra addresses on the test's own bridge, for a bounded time.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { startAttackProcess } from '../support/attacks.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon, type RunningDaemon } from '../support/daemon.js';
import {
  heldVips,
  NETNS_CLUSTER_BINARIES,
  startNetnsCluster,
  type NetnsCluster,
} from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';

const run = promisify(execFile);
const AGENT_PORT = 9106;
/** Slack over the baseline failover the attacked one may take (noise of a shared 2-core machine). */
const SLACK_MS = 3000;

async function killWriterAndTime(
  cluster: NetnsCluster,
  daemon: RunningDaemon['daemon'],
  from: string,
  to: string,
): Promise<number> {
  const killedAt = Date.now();
  await cluster.instance(from).kill();
  await waitFor(
    `${to} to hold the writer VIP`,
    async () =>
      daemon.status().roles.writer?.[cluster.writerVip] === to &&
      (await heldVips(cluster, to)).includes(cluster.writerVip),
    30_000,
    50,
  );
  return Date.now() - killedAt;
}

/** The manager's log lines from `since` on (what a failed run needs to be explained). */
function failoverTimeline(logFile: string, since: number): string {
  return readFileSync(logFile, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { time?: string; event?: string; msg?: string })
    .filter((entry) => Date.parse(entry.time ?? '') >= since)
    .slice(0, 40)
    .map((entry) => `${entry.time ?? ''} ${entry.event ?? ''} ${(entry.msg ?? '').slice(0, 200)}`)
    .join('\n');
}

async function healthz(url: string): Promise<number> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(3000) });
    return response.status;
  } catch {
    return 0;
  }
}

test('under slow-body and idle-socket attacks at once, /healthz answers and kill -9 of the writer fails over as fast as without them', async (t) => {
  if (!requireRoot(t, 'network namespaces') || !requireBinaries(t, NETNS_CLUSTER_BINARIES)) return;
  const cluster = await startNetnsCluster(t, {
    masters: 2,
    replicas: 1,
    monitor: { interval: '500ms', connect_timeout: '500ms', failures_before_down: 3 },
  });
  const { daemon, url, logFile } = await startDaemon(t, cluster.config);
  const hostAddress = (name: string) => cluster.config.hosts[name]?.address as string;
  await waitFor(
    'the writer VIP on db1',
    async () => (await heldVips(cluster, 'db1')).includes(cluster.writerVip),
    15_000,
  );

  // 1. Baseline: kill -9 of the writer, no attack.
  const baseline = await killWriterAndTime(cluster, daemon, 'db1', 'db2');
  t.diagnostic(`kill -9 without attacks: db2 holds the writer VIP ${baseline} ms after the kill`);

  // Repair: db1 restarts, is held, is set online and takes the writer back.
  await cluster.instance('db1').start();
  await waitFor(
    'db1 held after its restart',
    async () =>
      daemon.status().hosts.find((host) => host.name === 'db1')?.state === 'AWAITING_RECOVERY',
    30_000,
  );
  await waitFor(
    'db1 replicating from db2',
    async () =>
      (await cluster.instance('db1').sql('SHOW SLAVE STATUS'))[0]?.Slave_IO_Running === 'Yes',
    20_000,
  );
  const online = await daemon.engine.setOnline('db1');
  assert.equal(online.ok, true, online.detail);
  const back = await daemon.engine.moveRole('writer', 'db1', { force: false });
  assert.equal(back.ok, true, back.detail);
  await waitFor(
    'the writer VIP back on db1 only',
    async () =>
      (await heldVips(cluster, 'db1')).includes(cluster.writerVip) &&
      !(await heldVips(cluster, 'db2')).includes(cluster.writerVip),
    15_000,
  );

  // 2. The attackers: ten extra addresses on the test's bridge.
  const prefix = cluster.network.bridgeAddress.split('.').slice(0, 3).join('.');
  const sources = Array.from({ length: 10 }, (_, index) => `${prefix}.${201 + index}`);
  for (const source of sources) {
    await run('ip', ['addr', 'add', `${source}/24`, 'dev', cluster.network.bridge]);
    t.after(() =>
      run('ip', ['addr', 'del', `${source}/24`, 'dev', cluster.network.bridge]).catch(
        () => undefined,
      ),
    );
  }
  const managerPort = Number(new URL(url).port);
  // In a process of their own, as from another machine: thousands of sockets and timers must not
  // share the event loop of the manager this test runs in its own process.
  const attackers = await startAttackProcess(
    [
      // Idle sockets, no token: 160 per agent (its budget for strangers is 128).
      ...['db1', 'db2', 'db3'].map((name) => ({
        kind: 'idle' as const,
        host: hostAddress(name),
        port: AGENT_PORT,
        sources,
        perSource: 16,
      })),
      // Slow bodies with the agent token to the writer's agent, on the exchange's own route.
      {
        kind: 'slow-body' as const,
        host: hostAddress('db1'),
        port: AGENT_PORT,
        sources: sources.slice(0, 2),
        perSource: 8,
        path: '/api/v1/sync',
        tokenEnv: 'ATTACK_TOKEN',
      },
      // Slow bodies with an API token to the manager (the reported 70).
      {
        kind: 'slow-body' as const,
        host: '127.0.0.1',
        port: managerPort,
        sources: ['127.0.0.2'],
        perSource: 70,
        path: '/api/v1/alerts',
        tokenEnv: 'ATTACK_TOKEN',
      },
    ],
    { ATTACK_TOKEN: cluster.token },
  );
  t.after(() => attackers.stop());
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.equal(await healthz(url), 200, "the manager's /healthz under attack");
  assert.equal(
    daemon.status().hosts.find((host) => host.name === 'db1')?.state,
    'ONLINE',
    'the writer is still ONLINE under attack',
  );

  // 3. The same fault under both attacks.
  const attackedKillAt = Date.now();
  const attacked = await killWriterAndTime(cluster, daemon, 'db1', 'db2');
  t.diagnostic(`kill -9 under attack: db2 holds the writer VIP ${attacked} ms after the kill`);
  assert.equal(await healthz(url), 200, "the manager's /healthz after the failover");
  const results = await attackers.stop();
  t.diagnostic(`attack: ${JSON.stringify(results.map((r) => (Array.isArray(r) ? r.length : r)))}`);
  assert.ok(
    attacked <= baseline + SLACK_MS,
    `failover under attack took ${attacked} ms, without ${baseline} ms (slack ${SLACK_MS} ms); ` +
      `the manager's account of the last failover:\n${failoverTimeline(logFile, attackedKillAt - 100)}`,
  );
});
