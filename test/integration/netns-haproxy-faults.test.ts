/**
 * Faults in a row on one namespace cluster behind two real HAProxys, both configured as
 * docs/routing.md recommends (pushed by the manager and polling each agent's /health/writer with
 * `inter 1s fall 1 rise 1`), while a client writes through HAProxy "a" every 10 ms:
 *   1. a switchover (move-role) under that load: no acknowledged write lost;
 *   2. then a silent loss of the new writer's host (its link cut): writes through "a" land on
 *      the next writer.
 * All along, no sample of either HAProxy ever shows two servers a new connection could go to.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { HAPROXY, routableServers, startHaproxy } from '../support/haproxy.js';
import { MYSQL_PORT, NETNS_CLUSTER_BINARIES, startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { WriteProbe } from '../support/write-probe.js';
import { findFreePortRange } from '../../src/sandbox/ports.js';

/** HAProxy's check interval on the writer backend (docs/routing.md's recommendation). */
const CHECK_INTERVAL_MS = 1000;

test("through two HAProxys (push + httpchk): a switchover under write load, then a silent loss of the writer's host; never two routable writers", async (t) => {
  if (
    !requireRoot(t, 'network namespaces') ||
    !requireBinaries(t, [...NETNS_CLUSTER_BINARIES, ...HAPROXY])
  )
    return;
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-netns-haproxy-faults-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const configuredSockets = { a: join(dir, 'a.sock'), b: join(dir, 'b.sock') };
  const samplerSockets = configuredSockets;
  const cluster = await startNetnsCluster(t, {
    masters: 2,
    replicas: 1,
    // Nothing pulls the writer back to db1 once it is online again: the steps choose the writer.
    preferFirst: false,
    managerConfig: {
      routing: {
        haproxy: {
          instances: Object.entries(configuredSockets).map(([name, address]) => ({
            name,
            address,
            timeout: '500ms',
          })),
          backends: { writer: 'mysql_writer' },
        },
      },
    },
  });
  const address = (name: string) => cluster.nsHost(name).address;
  const fronts = { a: await findFreePortRange(1), b: await findFreePortRange(1) };
  for (const [name, socket] of Object.entries(configuredSockets))
    await startHaproxy(
      t,
      dir,
      name,
      { socket },
      `frontend w
  bind 127.0.0.1:${fronts[name as 'a' | 'b']}
  default_backend mysql_writer
backend mysql_writer
  option httpchk GET /health/writer
  http-check expect status 200
  default-server inter ${CHECK_INTERVAL_MS}ms fall 1 rise 1 on-marked-down shutdown-sessions
${['db1', 'db2'].map((host) => `  server ${host} ${address(host)}:${MYSQL_PORT} disabled check port 9106`).join('\n')}
`,
    );
  const { daemon } = await startDaemon(t, cluster.config);
  const journalAfter = (event: string, since: number) =>
    daemon.journal.read().find((entry) => entry.event === event && entry.at >= since)?.at;
  const onlyRoutable = async (host: string) => {
    for (const socket of Object.values(samplerSockets))
      if ((await routableServers(socket, 'mysql_writer')).join() !== host) return false;
    return true;
  };
  await waitFor('db1 the only routable writer at both HAProxys', () => onlyRoutable('db1'), 20_000);

  // Sample both proxies all along: never two servers a new connection could go to.
  const samples: Array<{ at: number; proxy: string; servers: string[] }> = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const [proxy, socket] of Object.entries(samplerSockets)) {
        const servers = await routableServers(socket, 'mysql_writer').catch(() => undefined);
        if (servers) samples.push({ at: Date.now(), proxy, servers });
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  const stopSampling = async () => {
    sampling = false;
    await sampler;
  };
  t.after(stopSampling);
  const probe = (front: number, table: string) =>
    new WriteProbe({
      host: '127.0.0.1',
      port: front,
      user: cluster.appUser.user,
      password: cluster.appUser.password,
      table,
      intervalMs: 10,
      connectTimeoutMs: 300,
    });
  const writes = probe(fronts.a, 'app.writes');
  writes.start();
  t.after(() => writes.stop());
  await waitFor('writes through HAProxy a', async () => writes.acked().length > 50, 20_000);

  await t.test(
    'switchover db1 -> db2 under write load through HAProxy: 0 acknowledged writes lost',
    async () => {
      const started = Date.now();
      const moved = await daemon.engine.moveRole('writer', 'db2', { force: false });
      assert.equal(moved.ok, true, moved.detail);
      const finished = Date.now();
      await waitFor('db2 the only routable writer at both', () => onlyRoutable('db2'), 10_000);
      await waitFor(
        'a write after the switchover',
        async () => writes.firstAckAfter(finished),
        10_000,
      );
      await writes.pause();
      const connection = await cluster.instance('db2').rootConnection();
      const missing = await writes.missingAcked(connection);
      connection.destroy();
      writes.resume();
      t.diagnostic(
        `switchover in ${finished - started} ms; longest write pause through HAProxy ${writes.longestPause(started - 200).pauseMs} ms`,
      );
      assert.deepEqual(missing, [], 'acknowledged writes missing on the new writer');
    },
  );

  await t.test(
    "the writer's link is cut (silent loss): writes through HAProxy land on the new writer",
    async () => {
      await waitFor(
        'writes through HAProxy a',
        async () => writes.firstAckAfter(Date.now() - 200),
        10_000,
      );
      await cluster.nsHost('db2').exec('ip', ['link', 'set', 'eth0', 'down']);
      // Taken once the link is down: a write sent later can reach db2 no more.
      const cutAt = Date.now();
      await waitFor('db1 the only routable writer at both', () => onlyRoutable('db1'), 30_000);
      const first = await waitFor(
        'a write through HAProxy a on db1',
        async () => writes.firstAckOfWriteSentAfter(cutAt),
        20_000,
      );
      const doneAt = await waitFor(
        'the failover journalled',
        async () => journalAfter('failover.done', cutAt),
        20_000,
      );
      t.diagnostic(
        `link cut: failover done ${doneAt - cutAt} ms, first write through HAProxy on db1 ${first - cutAt} ms after the cut`,
      );
    },
  );

  await stopSampling();
  await writes.stop();
  assert.ok(samples.length > 100, `${samples.length} samples`);
  const doubled = samples.filter((sample) => sample.servers.length > 1);
  assert.deepEqual(doubled, [], 'never two routable writers at one HAProxy');
});
