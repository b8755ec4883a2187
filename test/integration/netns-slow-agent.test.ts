/**
 * kill -9 of the writer's mariadbd while its agent is slow (SIGSTOP for about 1 s around the
 * kill, as a loaded machine once made it): the manager's exchange with that agent times out just
 * as the writer dies. The failover must still complete, without a refusal, by the agent's proved
 * fence once it answers, and at no sampled instant may two hosts be writable.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { NETNS_CLUSTER_BINARIES, startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { WritableSampler } from '../support/writable-sampler.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("kill -9 of the writer's mariadbd while its agent is stopped for 1 s: the failover completes without a refusal, never two writable hosts", async (t) => {
  if (!requireRoot(t, 'network namespaces') || !requireBinaries(t, NETNS_CLUSTER_BINARIES)) return;
  const cluster = await startNetnsCluster(t, { masters: 2, replicas: 1 });
  const { daemon } = await startDaemon(t, cluster.config);
  const writerOf = () => daemon.status().roles.writer?.[cluster.writerVip] ?? null;
  await waitFor('db1 to be the writer', async () => writerOf() === 'db1', 20_000);
  // Let the agents confirm the lease and report their contacts for a few cycles first.
  await sleep(2000);
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
  t.after(() => sampler.stop());

  const pid = cluster.agentPid('db1');
  assert.ok(pid, "db1's agent runs");
  let stopped = false;
  const resume = () => {
    if (!stopped) return;
    stopped = false;
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  };
  // Registered before the stop: a failing assertion must never leave the agent stopped.
  t.after(resume);
  process.kill(pid, 'SIGSTOP');
  stopped = true;
  // Long enough for one per-cycle exchange (500 ms timeout) to fail before the kill.
  await sleep(600);
  const killedAt = Date.now();
  await cluster.instance('db1').kill();
  await sleep(Math.max(0, killedAt + 400 - Date.now()));
  resume();

  const since = () => daemon.journal.read().filter((entry) => entry.at >= killedAt);
  try {
    await waitFor(
      'the failover to db2 to finish',
      async () => since().some((entry) => entry.event === 'failover.done'),
      30_000,
      50,
    );
  } finally {
    t.diagnostic(
      daemon.journal
        .read()
        .filter(
          (entry) =>
            entry.at >= killedAt - 1000 && !/^vip\.converged|^route\./.test(entry.event ?? ''),
        )
        .map(
          (entry) =>
            `+${entry.at - killedAt} ms ${entry.phase} ${entry.event} ${entry.host ?? ''} ${entry.outcome ?? ''} ${(entry.reason ?? entry.detail ?? '').slice(0, 240)}`,
        )
        .join('\n'),
    );
  }
  await sleep(1000);
  await sampler.stop();
  const journal = since();
  const done = journal.find((entry) => entry.event === 'failover.done');
  assert.ok(done);
  t.diagnostic(`failover done ${done.at - killedAt} ms after the kill`);
  assert.deepEqual(
    journal.filter((entry) => entry.event === 'failover.refused').map((entry) => entry.reason),
    [],
    'no refused failover',
  );
  assert.equal(writerOf(), 'db2');
  assert.deepEqual(sampler.splitBrainSamples(), [], 'never two writable hosts');
  // Promoted on the old writer's agent's proved fence, asked again once it answered: its agent
  // lived on and renewed its lease through the other agents, so no wait could have ended it (the
  // manager's last contact stood still while the failover held the lock: a wait ended on that was
  // wrong, and left the writer VIP on db1 as well as on db2 until the next exchange).
  const promoted = journal.find(
    (entry) =>
      entry.event === 'mysql.set_read_only' && entry.phase === 'before' && entry.host === 'db2',
  );
  const released = journal.find((entry) => entry.event === 'failover.lease_released');
  assert.ok(promoted, 'db2 was made writable');
  assert.ok(
    released && released.at <= promoted.at,
    "db1's agent proved its fence before db2 was made writable",
  );
  assert.match(released.reason ?? '', /VIPs removed/);
  assert.ok(done.at - killedAt < 15_000, `the failover took ${done.at - killedAt} ms`);
});
