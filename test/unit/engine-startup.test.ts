import assert from 'node:assert/strict';
import { test } from 'node:test';
import { holderOf } from '../../src/engine/roles.js';
import { SimCluster, clusterState, harness } from './engine-fakes.js';

const healthy = { db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' } as const;

test('start: two writable hosts and no writer in the stored state: none stays writable, passive, and says why', async () => {
  const sim = SimCluster.standard();
  sim.host('db2').readOnly = false;
  const state = clusterState(healthy, {});
  const h = harness({ sim, state });
  const result = await h.cycle(healthy);
  assert.deepEqual(sim.writable(), []);
  assert.equal(result.mode, 'passive');
  assert.match(
    result.modeReason ?? '',
    /started passive: .*db1 and db2 are writable and the stored state names no writer/,
  );
  assert.ok(h.events().includes('refused:startup.passive'));
  assert.equal(holderOf(result.roles, 'writer'), null, 'no guess');
});

test('start: two writable hosts, the stored state names one: only that one stays writable, passive', async () => {
  const sim = SimCluster.standard();
  sim.host('db2').readOnly = false;
  const h = harness({ sim });
  const result = await h.cycle(healthy);
  assert.deepEqual(sim.writable(), ['db1']);
  assert.equal(result.mode, 'passive');
  assert.match(result.modeReason ?? '', /the stored state names db1/);
});

test('start: a VIP where the stored state does not put it: passive with the reason', async () => {
  const sim = SimCluster.standard();
  sim.host('db2').vips.add('127.0.1.100');
  const h = harness({ sim });
  const result = await h.cycle(healthy);
  assert.equal(result.mode, 'passive');
  assert.match(
    result.modeReason ?? '',
    /VIP 127.0.1.100 \(writer\) is on db2 but the stored state puts it on db1/,
  );
  assert.deepEqual(sim.calls, [], 'passive from the start: nothing touched');
});

test('start: agreement stays active and changes nothing', async () => {
  const h = harness();
  const result = await h.cycle(healthy);
  assert.equal(result.mode, 'active');
  assert.deepEqual(h.sim.calls, []);
});

test('fresh cluster, all read-only, no stored roles: the preferred, most advanced host is elected; readers spread', async () => {
  const sim = SimCluster.standard();
  sim.host('db1').readOnly = true;
  for (const host of sim.hosts.values()) host.vips.clear();
  const h = harness({ sim, state: clusterState(healthy, {}) });
  const result = await h.cycle(healthy);
  assert.equal(holderOf(result.roles, 'writer'), 'db1');
  assert.deepEqual(sim.writable(), ['db1']);
  assert.ok(sim.host('db1').vips.has('127.0.1.100'));
  const readers = Object.values(result.roles.reader ?? {}).sort();
  assert.deepEqual(readers, ['db1', 'db2', 'db3']);
  assert.deepEqual(sim.violations, []);
});

test('fresh cluster with exactly one writable host: it is adopted; prefer then moves the writer safely', async () => {
  const sim = SimCluster.standard();
  sim.host('db1').readOnly = true;
  sim.host('db2').readOnly = false;
  sim.host('db1').vips.delete('127.0.1.100');
  const h = harness({
    sim,
    state: clusterState({ db1: 'AWAITING_RECOVERY', db2: 'ONLINE', db3: 'ONLINE' }, {}),
  });
  let result = await h.cycle({ db1: 'AWAITING_RECOVERY', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(holderOf(result.roles, 'writer'), 'db2');
  assert.ok(h.events().includes('decision:writer.adopted:db2'));
  assert.ok(
    !sim.calls.some((call) => call.startsWith('setReadOnly')),
    'the adopted writer was already writable',
  );
  // db1, the preferred host, is ONLINE again: a planned switchover, fence first.
  result = await h.cycle(healthy);
  assert.equal(holderOf(result.roles, 'writer'), 'db1');
  assert.ok(sim.calls.indexOf('fence:db2') < sim.calls.indexOf('setReadOnly:db1:false'));
  assert.deepEqual(sim.writable(), ['db1']);
  assert.deepEqual(sim.violations, []);
});

test('every cycle: a non-writer found writable is set read-only again', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.host('db3').readOnly = false;
  await h.cycle(healthy);
  assert.deepEqual(h.sim.calls, ['setReadOnly:db3:true']);
  assert.deepEqual(h.sim.writable(), ['db1']);
  const before = h.journal.entries.find(
    (entry) => entry.phase === 'before' && entry.host === 'db3',
  );
  assert.match(before?.reason ?? '', /read_only=OFF but db1 holds writer/);
});

test('no election while a host the manager cannot see might be a live writer', async () => {
  const sim = SimCluster.standard();
  sim.host('db1').reachable = false; // alive and writable, the manager just cannot reach it
  for (const host of sim.hosts.values()) host.vips.clear();
  const h = harness({ sim, state: clusterState(healthy, {}) });
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.deepEqual(sim.writable(), ['db1'], 'db2 was not made writable');
  assert.ok(!sim.calls.some((call) => call.startsWith('setReadOnly:db2:false')));
  assert.match(
    h.journal.entries.find((entry) => entry.event === 'writer.none')?.reason ?? '',
    /db1 cannot be checked/,
  );
  assert.deepEqual(sim.violations, []);
});

test('no eligible host for a role: its IPs are unassigned, the VIPs removed, and the journal says why once', async () => {
  const h = harness();
  await h.cycle(healthy);
  const lost = {
    db1: 'REPLICATION_DELAY',
    db2: 'REPLICATION_FAIL',
    db3: 'AWAITING_RECOVERY',
  } as const;
  await h.cycle(lost);
  await h.cycle(lost);
  const readers = h.engine.snapshot().roles.reader ?? {};
  assert.ok(
    Object.values(readers).every((host) => host === null),
    JSON.stringify(readers),
  );
  assert.equal(
    holderOf(h.engine.snapshot().roles, 'writer'),
    'db1',
    'the delayed writer keeps the writer role',
  );
  const notes = h.journal.entries.filter((entry) => entry.event === 'role.unassigned');
  assert.equal(notes.length, 3, 'one note per IP, not one per cycle');
  assert.match(
    notes[0]?.reason ?? '',
    /no eligible host for role reader \(db1 is REPLICATION_DELAY; db2 is REPLICATION_FAIL; db3 is AWAITING_RECOVERY\)/,
  );
  assert.deepEqual([...h.sim.host('db3').vips], []);
});
