/**
 * Namespace hosts behind two real HAProxys, both pushed by the manager through their runtime API;
 * HAProxy "a" also polls each agent's /health/writer (push and poll, as docs/routing.md
 * recommends), "b" is pushed only. kill -9 of the writer's mariadbd: both send writes to the new
 * writer, and at no sampled instant does either route writes to two writable hosts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { HAPROXY, routableServers as routable, startHaproxy } from '../support/haproxy.js';
import { MYSQL_PORT, NETNS_CLUSTER_BINARIES, startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { WritableSampler } from '../support/writable-sampler.js';
import { findFreePortRange } from '../../src/sandbox/ports.js';

test('namespace hosts through two HAProxys (push + httpchk, push only): kill -9 of the writer moves both, never two routable writers', async (t) => {
  if (
    !requireRoot(t, 'network namespaces') ||
    !requireBinaries(t, [...NETNS_CLUSTER_BINARIES, ...HAPROXY])
  )
    return;
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-netns-haproxy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sockets = { a: join(dir, 'a.sock'), b: join(dir, 'b.sock') };
  const cluster = await startNetnsCluster(t, {
    masters: 2,
    replicas: 1,
    managerConfig: {
      routing: {
        haproxy: [
          { name: 'a', socket: sockets.a, backends: { writer: 'mysql_writer' }, timeout: '500ms' },
          { name: 'b', socket: sockets.b, backends: { writer: 'mysql_writer' }, timeout: '500ms' },
        ],
      },
    },
  });
  const address = (name: string) => cluster.nsHost(name).address;
  const [frontA, frontB] = [await findFreePortRange(1), await findFreePortRange(1)];
  const writerBackend = (checks: boolean) => `backend mysql_writer
${checks ? '  option httpchk GET /health/writer\n  http-check expect status 200\n  default-server inter 1s fall 1 rise 1 on-marked-down shutdown-sessions\n' : ''}${[
    'db1',
    'db2',
  ]
    .map(
      (name) =>
        `  server ${name} ${address(name)}:${MYSQL_PORT} disabled${checks ? ' check port 9106' : ''}`,
    )
    .join('\n')}
`;
  await startHaproxy(
    t,
    dir,
    'a',
    { socket: sockets.a },
    `frontend w\n  bind 127.0.0.1:${frontA}\n  default_backend mysql_writer\n${writerBackend(true)}`,
  );
  await startHaproxy(
    t,
    dir,
    'b',
    { socket: sockets.b },
    `frontend w\n  bind 127.0.0.1:${frontB}\n  default_backend mysql_writer\n${writerBackend(false)}`,
  );
  const { daemon } = await startDaemon(t, cluster.config);

  for (const proxy of Object.values(sockets))
    await waitFor(
      `db1 the only routable writer at ${proxy}`,
      async () => (await routable(proxy, 'mysql_writer')).join() === 'db1',
      20_000,
    );

  // Sample both proxies all along: never two servers a new connection could go to.
  const samples: Array<{ at: number; proxy: string; servers: string[] }> = [];
  let sampling = true;
  // Which hosts accept writes, over their local sockets (the test's own reading).
  const writable = new WritableSampler(
    Object.fromEntries(
      [...cluster.instances.keys()].map((name) => [
        name,
        { socketPath: cluster.instance(name).socket, user: 'root' },
      ]),
    ),
    20,
  );
  writable.start();
  t.after(() => writable.stop());
  const sampler = (async () => {
    while (sampling) {
      for (const [proxy, socket] of Object.entries(sockets)) {
        const servers = await routable(socket, 'mysql_writer').catch(() => undefined);
        if (servers) samples.push({ at: Date.now(), proxy, servers });
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  t.after(async () => {
    sampling = false;
    await sampler;
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const killedAt = Date.now();
  await cluster.instance('db1').kill();
  for (const proxy of Object.values(sockets))
    await waitFor(
      `db2 the only routable writer at ${proxy}`,
      async () => (await routable(proxy, 'mysql_writer')).join() === 'db2',
      30_000,
    );
  const movedAt = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  sampling = false;
  await sampler;
  const firstAt = (proxy: string) =>
    (samples.find((sample) => sample.proxy === proxy && sample.servers.join() === 'db2')?.at ??
      NaN) - killedAt;
  const journalAt = (event: string) =>
    (daemon.journal.read().find((entry) => entry.event === event)?.at ?? NaN) - killedAt;
  t.diagnostic(
    `after kill -9: failover decided ${journalAt('failover.decided')} ms, done ${journalAt('failover.done')} ms; db2 the only routable writer at a (push + httpchk) ${firstAt('a')} ms, at b (push) ${firstAt('b')} ms; both checked ${movedAt - killedAt} ms (${samples.length} samples)`,
  );
  t.diagnostic(
    daemon.journal
      .read()
      .filter((entry) => entry.at >= killedAt)
      .map(
        (entry) =>
          `+${entry.at - killedAt} ms ${entry.phase} ${entry.event} ${entry.host ?? ''} ${entry.outcome ?? ''} ${(entry.detail ?? entry.reason ?? '').slice(0, 140)}`,
      )
      .join('\n'),
  );
  assert.ok(samples.length > 50, `${samples.length} samples`);
  await writable.stop();
  assert.deepEqual(writable.splitBrainSamples(), [], 'never two writable hosts');
  // "a" checks the agents too: the new writer's agent may answer 200 before its next check of
  // the killed one (and before the push). Two routable servers are allowed only while at most
  // one of them accepts writes in every writable sample within 200 ms.
  const writesToTwo = (sample: (typeof samples)[number]) => {
    if (sample.servers.length < 2) return false;
    const near = writable.samples.filter((taken) => Math.abs(taken.at - sample.at) <= 200);
    if (near.length === 0) return true;
    return near.some(
      (taken) => sample.servers.filter((server) => taken.writable.includes(server)).length > 1,
    );
  };
  t.diagnostic(
    `${samples.filter((sample) => sample.servers.length > 1).length} samples with two routable servers, at most one writable`,
  );
  assert.deepEqual(samples.filter(writesToTwo), [], 'never writes routed to two writable hosts');
  assert.ok(
    daemon.journal.read().some((entry) => entry.event === 'failover.done'),
    'the failover is journalled',
  );
  // The writer's agent kept its lease all along while HAProxy a polled the agents.
  const db2Log = readFileSync(join(cluster.dir, 'agent-db2.log'), 'utf8');
  assert.doesNotMatch(db2Log, /"event":"lease.lapsed"/);
});
