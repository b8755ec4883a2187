/**
 * Issue 13: planned switchovers that choose their own target, under a continuous write load. An
 * alert rule `NodeDiskFailing -> move_role writer` fires for the live writer; then the operator
 * takes the writer offline. Every move must succeed (the target is behind a replica at decision
 * time half the time: it catches up after the fence), with no acknowledged write lost and never
 * two writable hosts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openConnection } from '../../src/mysql/connect.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { NETNS_CLUSTER_BINARIES, startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { startLoad } from '../support/load.js';
import { describeDaemon, within } from '../support/deadline.js';

const MOVES = 20;

test(`${MOVES} alert-triggered switchovers and ${MOVES} set-offline switchovers in a row under write load all succeed`, async (t) => {
  if (!requireRoot(t, 'network namespaces') || !requireBinaries(t, NETNS_CLUSTER_BINARIES)) return;
  const cluster = await startNetnsCluster(t, {
    masters: 2,
    replicas: 1,
    preferFirst: false,
    extraRules: [{ alert: 'NodeDiskFailing', action: 'move_role', role: 'writer' }],
  });
  const { daemon, logFile } = await startDaemon(t, cluster.config);
  // A move takes well under a second; one that does not return within a minute is a hang, and
  // the failure then says what the manager was doing.
  const bounded = <T>(what: string, work: Promise<T>) =>
    within(60_000, what, work, () => describeDaemon(daemon, logFile));
  const writerOf = () => daemon.status().roles.writer?.[cluster.writerVip] ?? null;
  await waitFor('db1 to be the writer', async () => writerOf() === 'db1', 20_000);
  const { writes, sampler } = startLoad(t, cluster);
  await waitFor('writes', async () => writes.acked().length > 20, 10_000);

  for (let move = 1; move <= MOVES; move++) {
    const holder = writerOf() as string;
    const started = Date.now();
    const alert = {
      status: 'firing' as const,
      name: 'NodeDiskFailing',
      labels: { alertname: 'NodeDiskFailing', host: holder },
      annotations: {},
      startsAt: new Date(started).toISOString(),
      fingerprint: `disk-${move}`,
    };
    const [decision] = await bounded(`alert move ${move}`, daemon.engine.handleAlerts([alert]));
    assert.equal(decision?.decision, 'acted', `alert move ${move}: ${decision?.reason}`);
    assert.notEqual(writerOf(), holder, `alert move ${move}: the writer moved`);
    const [resolved] = await bounded(
      `resolving alert ${move}`,
      daemon.engine.handleAlerts([
        { ...alert, status: 'resolved', endsAt: new Date().toISOString() },
      ]),
    );
    assert.notEqual(resolved?.decision, 'failed');
    const movedAt = Date.now();
    await waitFor(
      `a write after alert move ${move}`,
      async () => writes.firstAckAfter(movedAt),
      10_000,
      20,
    ).catch((error: Error) => {
      const tail = daemon.journal
        .read()
        .slice(-25)
        .map(
          (entry) =>
            `${entry.event} ${entry.host ?? ''} ${entry.outcome ?? ''} ${(entry.reason ?? entry.detail ?? '').slice(0, 140)}`,
        );
      const errors = writes.records.slice(-3).map((record) => record.error ?? 'ok');
      throw new Error(
        `${error.message}\nlast write errors: ${errors.join(' | ')}\njournal:\n${tail.join('\n')}`,
      );
    });
  }
  for (let move = 1; move <= MOVES; move++) {
    const holder = writerOf() as string;
    const offline = await bounded(`set-offline move ${move}`, daemon.engine.setOffline(holder));
    assert.equal(offline.ok, true, `set-offline move ${move}: ${offline.detail}`);
    assert.notEqual(writerOf(), holder);
    const online = await bounded(`set-online after move ${move}`, daemon.engine.setOnline(holder));
    assert.equal(online.ok, true, `set-online ${holder} after move ${move}: ${online.detail}`);
    const movedAt = Date.now();
    await waitFor(
      `a write after set-offline move ${move}`,
      async () => writes.firstAckAfter(movedAt),
      10_000,
      20,
    );
  }
  t.diagnostic(
    `longest write pause over ${2 * MOVES} switchovers: ${writes.longestPause().pauseMs} ms`,
  );

  await bounded('stopping the writes', writes.stop());
  await bounded('stopping the sampler', sampler.stop());
  const survivor = await openConnection({
    socketPath: cluster.instance(writerOf() as string).socket,
    user: 'root',
  });
  try {
    assert.deepEqual(await writes.missingAcked(survivor), [], 'acknowledged writes lost');
  } finally {
    survivor.destroy();
  }
  assert.deepEqual(
    sampler.samples.filter((sample) => sample.writable.length > 1).slice(0, 3),
    [],
    'two writable hosts',
  );
});
