import assert from 'node:assert/strict';
import { test } from 'node:test';
import { holderOf } from '../../src/engine/roles.js';
import { SimCluster, clusterState, harness } from './engine-fakes.js';

const healthy = { db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' } as const;

test('a manager that starts while the configured writer is dead elects db2 and repoints db3 (replica_of: writer) to it', async () => {
  const sim = SimCluster.standard();
  for (const host of sim.hosts.values()) host.vips.clear();
  sim.host('db1').readOnly = true;
  sim.killHost('db1');
  const hosts = { db1: 'AWAITING_RECOVERY', db2: 'ONLINE', db3: 'ONLINE' } as const;
  const h = harness({ sim, state: clusterState(hosts, {}) });
  const result = await h.cycle(hosts);
  assert.equal(holderOf(result.roles, 'writer'), 'db2');
  assert.deepEqual(sim.writable(), ['db2']);
  assert.equal(sim.host('db3').master, 'db2', 'db3 no longer replicates from the dead db1');
  assert.ok(sim.calls.includes('repoint:db3:db2'));
  assert.ok(
    sim.calls.indexOf('setReadOnly:db2:false') < sim.calls.indexOf('repoint:db3:db2'),
    'repointed after the promotion',
  );
  const before = h.journal.entries.find(
    (entry) => entry.phase === 'before' && entry.event === 'mysql.repoint' && entry.host === 'db3',
  );
  assert.match(
    before?.reason ?? '',
    /db3 \(replica_of: writer\) replicates from db1, not from the writer db2/,
  );
  // The next cycle finds nothing to do.
  const calls = sim.calls.length;
  await h.cycle(healthy);
  assert.equal(sim.calls.filter((call) => call.startsWith('repoint')).length, 1);
  assert.ok(sim.calls.length >= calls);
  assert.deepEqual(sim.violations, []);
});

test('every cycle: a replica of the writer found replicating from another host is repointed to the writer, and a failed repoint is not retried in a loop', async () => {
  const sim = SimCluster.standard();
  sim.host('db3').master = 'db2';
  // The passive peer db2 replicating from elsewhere is not a replica_of: writer: never touched.
  sim.host('db2').master = 'db3';
  sim.failOn.add('repoint:db3');
  const h = harness({ sim });
  await h.cycle(healthy);
  await h.cycle(healthy);
  await h.cycle(healthy);
  assert.deepEqual(
    sim.calls.filter((call) => call.startsWith('repoint')),
    ['repoint:db3:db1'],
    'tried once while nothing changed',
  );
  assert.ok(!sim.calls.some((call) => /^repoint:db[12]:/.test(call)), 'peers are never repointed');
  sim.failOn.delete('repoint:db3');
  // Something changed (db3 now replicates from yet another source): tried again, and it works.
  sim.host('db3').master = 'db1';
  await h.cycle(healthy);
  sim.host('db3').master = 'db2';
  await h.cycle(healthy);
  assert.equal(sim.host('db3').master, 'db1');
  assert.deepEqual(
    sim.calls.filter((call) => call.startsWith('repoint')),
    ['repoint:db3:db1', 'repoint:db3:db1'],
  );
  await h.cycle(healthy);
  assert.equal(sim.calls.filter((call) => call.startsWith('repoint')).length, 2);
});

test('a replica with transactions the writer lacks is not repointed to it: refused and journalled once', async () => {
  const sim = SimCluster.standard();
  // db3 replicates from db2 and has db2's transactions 0-2-101..105, which the writer db1 lacks.
  sim.host('db3').master = 'db2';
  sim.host('db3').applied = '0-2-105';
  sim.host('db3').received = '0-2-105';
  sim.host('db3').binlogState = '0-1-100,0-2-105';
  sim.host('db1').binlogState = '0-1-100,0-2-100';
  const h = harness({ sim });
  await h.cycle(healthy);
  await h.cycle(healthy);
  assert.ok(!sim.calls.some((call) => call.startsWith('repoint')));
  assert.equal(sim.host('db3').master, 'db2');
  const refusals = h.journal.entries.filter((entry) => entry.event === 'replica.repoint_refused');
  assert.equal(refusals.length, 1, 'journalled once, not every cycle');
  assert.match(refusals[0]?.reason ?? '', /db3 has 0-2-101\.\.105 that db1 lacks/);
});

test("a replica's observation from before the writer moved does not repoint it again: an operator's switchover while the checks ran, then the next cycle", async () => {
  const sim = SimCluster.standard();
  const h = harness({ sim });
  await h.cycle(healthy);
  // db3's check ran before the switchover repointed it, db2's after db2 was promoted.
  const before = sim.observe(Date.now() - 50);
  const moved = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.ok(moved.ok, moved.detail);
  assert.equal(sim.host('db3').master, 'db2', 'the switchover repointed db3');
  const repoints = () => sim.calls.filter((call) => call.startsWith('repoint')).length;
  const afterSwitchover = repoints();
  const mixed = sim
    .observe()
    .map((obs) => (obs.host === 'db3' ? (before.find((old) => old.host === 'db3') ?? obs) : obs));
  assert.equal(mixed.find((obs) => obs.host === 'db3')?.replication?.masterPort, 3307, 'from db1');
  await h.engine.onCycle(mixed, h.engine.snapshot());
  assert.equal(repoints(), afterSwitchover, 'not repointed on an observation older than the move');

  // A replica really replicating from elsewhere, seen after the move, is still repointed.
  sim.host('db3').master = 'db1';
  await new Promise((resolve) => setTimeout(resolve, 5));
  await h.cycle(healthy);
  assert.equal(sim.host('db3').master, 'db2');
  assert.equal(repoints(), afterSwitchover + 1);
});
