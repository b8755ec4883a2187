/**
 * Issue 22 items 5 and 8 against real servers: an old writer that comes back (no restart, a link
 * cut) with writes its successor never got is held, whatever gtid_strict_mode says and even when
 * its replication runs (keys that do not collide), and never takes a role although
 * auto_set_online would have applied. With monitor.auto_rejoin it is saved and rebuilt by itself.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { runChecksum } from '../../src/checksum/run.js';
import type { Daemon } from '../../src/daemon/daemon.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { startNetnsCluster, type NetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { TRANSFER_BINARIES } from '../support/transfer-tests.js';

const NEEDS: Array<[string, string]> = [...TRANSFER_BINARIES, ['mariadb-binlog', 'mariadb-client']];
const HOSTS = ['db1', 'db2', 'db3'];
/** Long enough to outlast a failover's outage, short enough to watch it pass. */
const AUTO_SET_ONLINE_MS = 15_000;

function stateOf(daemon: Daemon, name: string) {
  return daemon.status().hosts.find((host) => host.name === name);
}

function rolesHeldBy(daemon: Daemon, name: string): string[] {
  return Object.entries(daemon.status().roles).flatMap(([role, ips]) =>
    Object.entries(ips)
      .filter(([, holder]) => holder === name)
      .map(([ip]) => `${role} ${ip}`),
  );
}

async function setStrictMode(cluster: NetnsCluster, on: boolean): Promise<void> {
  for (const name of HOSTS) {
    const db = cluster.instance(name);
    await db.sql(`SET GLOBAL gtid_strict_mode = ${on ? 'ON' : 'OFF'}`);
    // The replication threads take the mode when they start.
    await db.sql('STOP SLAVE');
    await db.sql('START SLAVE');
  }
}

/**
 * The writer takes writes that never leave it (its replicas stopped receiving), then loses its
 * link: a failover follows. The new writer takes writes on other keys, then the link comes back.
 */
async function divergeWriter(
  t: TestContext,
  daemon: Daemon,
  cluster: NetnsCluster,
  old: string,
  next: string,
  keys: { errant: number; after: number },
): Promise<void> {
  // A writer whose agent never confirmed its lease to this manager is not failed over (invariant 7).
  await waitFor(
    `${old}'s agent holding the writer lease`,
    async () => stateOf(daemon, old)?.agent?.lease?.holding === true,
    30_000,
  );
  for (const name of HOSTS.filter((host) => host !== old))
    await cluster.instance(name).sql('STOP SLAVE IO_THREAD');
  for (let i = 0; i < 5; i++)
    await cluster.instance(old).sql(`INSERT INTO app.writes VALUES (${keys.errant + i}, 1)`);
  const cut = Date.now();
  await cluster.nsHost(old).exec('ip', ['link', 'set', 'eth0', 'down']);
  await waitFor(
    `${next} to be the writer`,
    async () => daemon.status().roles.writer?.[cluster.writerVip] === next,
    40_000,
  );
  t.diagnostic(`failover ${old} -> ${next} ${Date.now() - cut} ms after the cut`);
  for (const name of HOSTS.filter((host) => host !== old && host !== next)) {
    // The failover repointed the replica to the new writer; make sure it receives again.
    await cluster
      .instance(name)
      .sql('START SLAVE IO_THREAD')
      .catch(() => undefined);
  }
  for (let i = 0; i < 5; i++)
    await cluster.instance(next).sql(`INSERT INTO app.writes VALUES (${keys.after + i}, 2)`);
  await cluster.nsHost(old).exec('ip', ['link', 'set', 'eth0', 'up']);
  t.diagnostic(`${old}'s link back ${Date.now() - cut} ms after the cut`);
}

/** Samples until `until` says stop (or the time is up): the host never ONLINE, never a role. */
async function neverServes(
  daemon: Daemon,
  name: string,
  forMs: number,
  until: () => boolean = () => false,
): Promise<void> {
  const deadline = Date.now() + forMs;
  while (Date.now() < deadline && !until()) {
    const host = stateOf(daemon, name);
    assert.notEqual(host?.state, 'ONLINE', `${name} went ONLINE: ${host?.reason}`);
    assert.deepEqual(rolesHeldBy(daemon, name), [], `${name} got a role`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function assertConsistent(t: TestContext, cluster: NetnsCluster): Promise<void> {
  const report = await runChecksum(cluster.config, { replicaWaitTimeoutMs: 20_000 });
  t.diagnostic(`checksum: writer ${report.writer}, ${JSON.stringify(report.hosts)}`);
  assert.equal(report.differences, 0, JSON.stringify(report.hosts));
  assert.ok(
    report.hosts.every((host) => host.status === 'checked'),
    JSON.stringify(report.hosts),
  );
}

test(
  'errant writes hold a returning old writer (gtid_strict_mode OFF, then ON); monitor.auto_rejoin saves them and rebuilds it',
  { timeout: 600_000 },
  async (t) => {
    if (!requireRoot(t, 'network namespaces') || !requireBinaries(t, NEEDS)) return;
    const cluster = await startNetnsCluster(t, {
      masters: 2,
      replicas: 1,
      transfers: true,
      // No `prefer`: a switch back to the rebuilt host is the master-master topology's business
      // after a rejoin (the peer's replication from it), not this test's.
      preferFirst: false,
      monitor: { auto_set_online: `${AUTO_SET_ONLINE_MS}ms` },
      managerConfig: { backup: { dir: 'backups' } },
    });
    let running = await startDaemon(t, cluster.config);
    try {
      let daemon = running.daemon;
      await waitFor(
        'every host ONLINE with db1 the writer',
        async () =>
          HOSTS.every((name) => stateOf(daemon, name)?.state === 'ONLINE') &&
          daemon.status().roles.writer?.[cluster.writerVip] === 'db1',
        30_000,
      );

      // 1. gtid_strict_mode=OFF (MariaDB's default), keys that do not collide: db1's replication
      // from db2 keeps running, so nothing but the errant check keeps it out.
      await setStrictMode(cluster, false);
      await divergeWriter(t, daemon, cluster, 'db1', 'db2', { errant: 7_771_000, after: 5000 });
      await waitFor(
        'db1 reachable again and AWAITING_RECOVERY',
        async () => stateOf(daemon, 'db1')?.state === 'AWAITING_RECOVERY',
        30_000,
      );
      await neverServes(daemon, 'db1', AUTO_SET_ONLINE_MS + 6000);
      const held = stateOf(daemon, 'db1');
      assert.match(held?.held ?? '', /^errant transactions: \d+ the writer db2 lacks \(0-1-\d+/);
      const [replication] = await cluster.instance('db1').sql('SHOW SLAVE STATUS');
      t.diagnostic(
        `db1 held: ${held?.held}; its replication IO ${replication?.Slave_IO_Running} SQL ${replication?.Slave_SQL_Running} ${replication?.Last_Error ?? ''}`,
      );
      assert.equal(replication?.Slave_SQL_Running, 'Yes', 'strict mode OFF: it applies around');
      const holds = daemon.journal
        .read()
        .filter((entry) => entry.event === 'host.held_errant' && entry.host === 'db1');
      assert.equal(holds.length, 1, 'journalled once, not every cycle');
      const metrics = await daemon.metrics.render();
      assert.match(metrics.body, /switchyard_gtid_strict_mode\{host="db1",cluster="netns"\} 0/);
      const warned = readFileSync(running.logFile, 'utf8');
      assert.match(warned, /"event":"monitor.gtid_strict_mode_off"/);

      // 2. The same manager with monitor.auto_rejoin: db1 is saved and rebuilt by itself.
      await running.stop();
      const withAutoRejoin = {
        ...cluster.config,
        monitor: { ...cluster.config.monitor, auto_rejoin: true },
      };
      running = await startDaemon(t, withAutoRejoin, 'daemon-auto-rejoin.log');
      daemon = running.daemon;
      await waitFor(
        'db1 rejoined automatically and ONLINE',
        async () =>
          daemon.status().autoRejoin?.state === 'ok' && stateOf(daemon, 'db1')?.state === 'ONLINE',
        180_000,
      );
      const report = daemon.status().autoRejoin;
      t.diagnostic(`auto_rejoin: ${JSON.stringify(report)}`);
      assert.equal(report?.host, 'db1');
      assert.equal(report?.from, 'db3', 'rebuilt from the replica, not the writer');
      const saved = readFileSync(report?.file ?? '', 'utf8');
      assert.match(saved, /7771000/, 'the saved file holds the errant writes');
      assert.equal(
        (await cluster.instance('db1').sql('SELECT id FROM app.writes WHERE id >= 7771000')).length,
        0,
        'the errant writes are gone from db1',
      );
      await waitFor(
        "db1 replicates the writer's rows",
        async () =>
          (await cluster.instance('db1').sql('SELECT id FROM app.writes WHERE id = 5004'))
            .length === 1,
        30_000,
      );
      assert.match(
        (await daemon.metrics.render()).body,
        /switchyard_auto_rejoins_total\{result="ok",cluster="netns"\} 1/,
      );
      await waitFor(
        'db1 and db3 ONLINE under the writer db2',
        async () =>
          daemon.status().roles.writer?.[cluster.writerVip] === 'db2' &&
          ['db1', 'db3'].every((name) => stateOf(daemon, name)?.state === 'ONLINE'),
        60_000,
      );
      await assertConsistent(t, cluster);

      // 3. gtid_strict_mode=ON: the writer db2 diverges and fails over to the rebuilt db1; db2 is
      // held (never a role), then rebuilt by auto_rejoin.
      await setStrictMode(cluster, true);
      const since = Date.now();
      await divergeWriter(t, daemon, cluster, 'db2', 'db1', { errant: 8_881_000, after: 6000 });
      // The rejoin sets the host online as soon as its copy replicates; auto_rejoin.done follows.
      const rejoined = () =>
        daemon.journal
          .read()
          .some(
            (entry) =>
              entry.event === 'host.set_online' && entry.host === 'db2' && entry.at > since,
          );
      await waitFor(
        'db2 back in AWAITING_RECOVERY, its old roles gone',
        async () =>
          stateOf(daemon, 'db2')?.state === 'AWAITING_RECOVERY' &&
          rolesHeldBy(daemon, 'db2').length === 0,
        30_000,
      );
      await neverServes(daemon, 'db2', 180_000, rejoined);
      assert.ok(rejoined(), 'rebuilt by auto_rejoin');
      await waitFor(
        'auto_rejoin.done for db2',
        async () =>
          daemon.journal
            .read()
            .some(
              (entry) =>
                entry.event === 'auto_rejoin.done' && entry.host === 'db2' && entry.at > since,
            ),
        20_000,
      );
      const heldAgain = daemon.journal
        .read()
        .find(
          (entry) => entry.event === 'host.held_errant' && entry.host === 'db2' && entry.at > since,
        );
      assert.match(heldAgain?.reason ?? '', /0-2-\d+/, 'held first, with the GTIDs');
      assert.match(readFileSync(daemon.status().autoRejoin?.file ?? '', 'utf8'), /8881000/);
      await waitFor(
        'db2 ONLINE again',
        async () => stateOf(daemon, 'db2')?.state === 'ONLINE',
        60_000,
      );
      await assertConsistent(t, cluster);
    } catch (error) {
      for (const entry of running.daemon.journal
        .read()
        .filter(
          (item, index, all) =>
            item.phase === 'refused' ||
            (index >= all.length - 15 && !/^vip\.converged|^agent\./.test(item.event)),
        )
        .slice(-40))
        t.diagnostic(
          `${new Date(entry.at).toISOString()} ${entry.phase} ${entry.event} ${entry.host ?? ''} ${entry.outcome ?? ''} ${(entry.reason ?? entry.detail ?? '').slice(0, 300)}`,
        );
      t.diagnostic(
        JSON.stringify(
          running.daemon
            .status()
            .hosts.map((host) => [host.name, host.state, host.held, host.reason]),
        ),
      );
      throw error;
    } finally {
      await running.stop();
    }
  },
);
