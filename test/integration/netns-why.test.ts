/**
 * `switchyard why` on namespace hosts, one cluster through a sequence of faults: asked while the
 * engine must not (or cannot yet) act, it gives the true reason each time: a partition between
 * the manager and the writer (others still see it), manual mode, the wait for the old writer's
 * lease, maintenance, and the only candidate held. Each answer is checked against what the engine
 * does (the writer role stays or moves) and journals.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Analysis } from '../../src/analysis/types.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { MYSQL_PORT, NETNS_CLUSTER_BINARIES, startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';

const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;
/** Long enough that the failover's wait for it is seen, short enough for the test's budget. */
const LEASE_MS = 12_000;

test('why tells the true reason: partition, manual mode, lease wait, maintenance, held candidate', async (t) => {
  if (
    !requireRoot(t, 'network namespaces and iptables') ||
    !requireBinaries(t, NETNS_CLUSTER_BINARIES)
  )
    return;
  const cluster = await startNetnsCluster(t, {
    masters: 2,
    replicas: 1,
    monitor: {
      interval: '500ms',
      connect_timeout: '500ms',
      failures_before_down: 3,
      auto_set_online: '0',
      // Two outages of db1 below must not make it "flapping": that hold is promote_held's.
      flap: { count: 10, window: '10m' },
    },
    // promote_held false: a held db1 is never promoted, whatever it is held for.
    managerConfig: { lease: `${LEASE_MS}ms`, failover: { promote_held: false } },
  });
  const running = await startDaemon(t, cluster.config);
  const { engine, journal } = running.daemon;
  const writerOf = () => running.daemon.status().roles.writer?.[cluster.writerVip] ?? null;
  const stateOf = (host: string) =>
    running.daemon.status().hosts.find((entry) => entry.name === host)?.state;
  const why = async (host?: string): Promise<Analysis> => {
    const response = await fetch(`${running.url}/api/v1/analysis${host ? `?host=${host}` : ''}`, {
      headers: { authorization: `Bearer ${cluster.token}` },
    });
    assert.equal(response.status, 200, await response.clone().text());
    return (await response.json()) as Analysis;
  };
  const has = (analysis: Analysis, name: string, host?: string) =>
    analysis.situations.some(
      (situation) => situation.name === name && (host === undefined || situation.host === host),
    );
  const blocked = (analysis: Analysis, kind: string, host?: string) =>
    analysis.blockers.some(
      (blocker) => blocker.kind === kind && (host === undefined || blocker.host === host),
    );
  const events = (event: string) => journal.read().filter((entry) => entry.event === event);

  await waitFor('db1 to be the writer', async () => writerOf() === 'db1', 30_000);
  await waitFor(
    'a healthy cluster to have no situation',
    async () => (await why()).situations.length === 0,
    20_000,
  );

  await t.test(
    'the manager alone loses the writer: no failover, and why names who still sees it',
    async () => {
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
      let seen: Analysis | undefined;
      await waitFor(
        'why to say the manager path is broken',
        async () => {
          const analysis = await why();
          if (
            has(analysis, 'manager_path_broken', 'db1') &&
            blocked(analysis, 'evidence_contradicts', 'db1')
          )
            seen = analysis;
          return seen !== undefined;
        },
        30_000,
      );
      const blocker = seen?.blockers.find((entry) => entry.kind === 'evidence_contradicts');
      assert.ok(
        blocker?.from?.some((host) => host === 'db2' || host === 'db3'),
        `the hosts that still see db1 are named: ${JSON.stringify(blocker)}`,
      );
      assert.equal(blocker?.rule, 'invariant 4');
      assert.equal(seen?.plan, undefined, 'no failover is planned');
      // The same, as the operator sees it.
      const { stdout } = await promisify(execFile)(process.execPath, [
        CLI,
        'why',
        'db1',
        '--url',
        running.url,
        '--token-file',
        join(cluster.dir, 'token'),
      ]);
      assert.match(stdout, /manager_path_broken/);
      assert.match(stdout, /evidence_contradicts/);
      assert.equal(writerOf(), 'db1');
      assert.equal(events('failover.decided').length, 0);
      await db1.exec('iptables', ['-F', 'INPUT']);
      await waitFor(
        'db1 back as the writer, nothing to say',
        async () => stateOf('db1') === 'ONLINE' && !has(await why(), 'manager_path_broken'),
        30_000,
      );
    },
  );

  let linkDownAt = 0;
  await t.test(
    'manual mode: the writer dies, nothing moves, and why says manual mode',
    async () => {
      const mode = await engine.setMode('manual', 'why test');
      assert.equal(mode.ok, true, mode.detail);
      linkDownAt = Date.now();
      await cluster.nsHost('db1').exec('ip', ['link', 'set', 'eth0', 'down']);
      let seen: Analysis | undefined;
      await waitFor(
        'why to see the dead writer and the mode',
        async () => {
          const analysis = await why();
          if (has(analysis, 'dead_writer', 'db1') && has(analysis, 'manual_mode')) seen = analysis;
          return seen !== undefined;
        },
        30_000,
      );
      assert.equal(seen?.plan?.kind, 'failover');
      assert.equal(seen?.plan?.to, 'db2');
      assert.equal(seen?.acts, false);
      assert.ok(blocked(seen as Analysis, 'mode'), JSON.stringify(seen?.blockers));
      assert.equal(writerOf(), 'db1', 'manual mode moved nothing');
    },
  );

  await t.test(
    'active again: the failover waits out the old lease, and why shows its deadline',
    async () => {
      const mode = await engine.setMode('active', 'why test');
      assert.equal(mode.ok, true, mode.detail);
      let waiting: Analysis | undefined;
      await waitFor(
        'db2 to be the writer',
        async () => {
          const analysis = await why();
          if (has(analysis, 'lease_wait', 'db1')) waiting ??= analysis;
          return writerOf() === 'db2';
        },
        LEASE_MS + 30_000,
        100,
      );
      assert.ok(waiting, 'why showed the lease wait while the failover waited');
      const blocker = waiting.blockers.find((entry) => entry.kind === 'lease_wait');
      assert.equal(blocker?.rule, 'invariant 7');
      // The agent was last reached around the moment its link went down: the lease runs from there.
      assert.ok(
        Date.parse(blocker?.until ?? '') >= linkDownAt - 1000 + LEASE_MS,
        `deadline ${blocker?.until} is a lease after the link went down (${new Date(linkDownAt).toISOString()})`,
      );
      assert.equal(waiting.plan?.to, 'db2');
      assert.ok(events('failover.lease_wait').length > 0, 'the engine journaled a lease wait');
    },
  );

  await t.test(
    'maintenance: the new writer dies in maintenance, no failover, why says so',
    async () => {
      await cluster.nsHost('db1').exec('ip', ['link', 'set', 'eth0', 'up']);
      let restarted = false;
      const db1Back = waitFor(
        'db1 back and waiting',
        async () => {
          if (stateOf('db1') === 'AWAITING_RECOVERY') return true;
          // Its agent fenced it when the lease lapsed; on a loaded machine read_only may not be
          // proved within the fence's deadline, and the escalation stops the server. Started
          // again it comes back held all the same (restarted).
          if (!restarted && !(await cluster.instance('db1').ping())) {
            restarted = true;
            t.diagnostic("db1's server was stopped by its agent's fence: starting it");
            await cluster.instance('db1').start();
          }
          return false;
        },
        60_000,
        200,
      );
      await db1Back.catch(async (error: unknown) => {
        // What the manager saw of db1, for whoever reads a failure.
        const db1 = running.daemon.status().hosts.find((entry) => entry.name === 'db1');
        t.diagnostic(
          `db1: ${JSON.stringify(db1)}; its server answers: ${await cluster.instance('db1').ping()}`,
        );
        throw error;
      });
      engine.setMaintenance(new Set(['db2']));
      await cluster.instance('db2').kill();
      await waitFor(
        'why to say db2 is in maintenance',
        async () => {
          const analysis = await why('db2');
          return has(analysis, 'maintenance', 'db2') && blocked(analysis, 'maintenance', 'db2');
        },
        30_000,
      );
      await waitFor(
        'the engine to withhold the failover for maintenance',
        async () =>
          events('failover.withheld').some((entry) => /maintenance/.test(entry.reason ?? '')),
        20_000,
      );
      assert.equal(writerOf(), 'db2');
    },
  );

  await t.test(
    'maintenance over: the only candidate is held, why names it as the engine refuses',
    async () => {
      engine.setMaintenance(new Set());
      let seen: Analysis | undefined;
      await waitFor(
        'the engine to refuse and why to name the held candidate',
        async () => {
          const refusal = engine.currentConditions()['failover.refused'];
          const analysis = await why();
          if (
            refusal &&
            blocked(analysis, 'held_candidate', 'db1') &&
            analysis.blockers.some(
              (blocker) => blocker.kind === 'refusal' && blocker.detail === refusal,
            )
          )
            seen = analysis;
          return seen !== undefined;
        },
        30_000,
      );
      assert.ok(has(seen as Analysis, 'held_candidate', 'db1'));
      assert.ok(
        has(seen as Analysis, 'dead_writer', 'db2') ||
          has(seen as Analysis, 'dead_writer_and_some_replicas', 'db2'),
      );
      assert.equal(seen?.acts, false);
      assert.equal(writerOf(), 'db2', 'nothing was promoted');
      assert.ok(events('failover.refused').length > 0);
    },
  );
});
