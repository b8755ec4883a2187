import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterState } from '../../src/domain/cluster-state.js';
import { holderOf } from '../../src/engine/roles.js';
import { clusterState, harness } from './engine-fakes.js';

const healthy = { db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' } as const;

test('move-role writer: fence, wait for the final position, promote, VIP, repoint; one writer at every step', async () => {
  const h = harness({ positions: { db1: '0-1-120' } });
  await h.cycle(healthy);
  const result = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(result.ok, true, result.detail);
  assert.deepEqual(h.sim.calls, [
    'fence:db1',
    'removeVip:db1:127.0.1.100',
    'waitForGtid:db2:0-1-120',
    'setReadOnly:db2:false',
    'addVip:db2:127.0.1.100',
    'repoint:db3:db2',
  ]);
  assert.deepEqual(h.sim.writable(), ['db2']);
  assert.deepEqual(h.sim.violations, []);
  const state = h.engine.snapshot();
  assert.equal(holderOf(state.roles, 'writer'), 'db2');
  assert.equal(state.operation, undefined);
  // Every action was journalled before it ran, in this order.
  const steps = h.journal.entries
    .filter((entry) => entry.phase === 'before')
    .map((entry) => entry.event);
  assert.deepEqual(steps, [
    'mysql.fence',
    'vip.remove',
    'mysql.wait_for_gtid',
    'mysql.set_read_only',
    'vip.add',
    'mysql.repoint',
  ]);
  // An operator move is not undone by `prefer: db1` on the next cycle.
  await h.cycle(healthy);
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
});

test('switchover saves the operation record as it begins, then the name of every step', async () => {
  const h = harness();
  await h.cycle(healthy);
  const seen: string[] = [];
  const save = h.store.save.bind(h.store);
  h.store.save = async (state: ClusterState) => {
    if (state.operation) seen.push(state.operation.step);
    await save(state);
  };
  await h.engine.moveRole('writer', 'db2', { force: false });
  assert.deepEqual(seen, [
    'deciding',
    'fencing',
    'catching_up',
    'promoting',
    'moving_vip',
    'moving_vip',
    'repointing',
  ]);
});

test('catch-up timeout: the fence is undone and the move refused', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.waitAnswer = () => false;
  const result = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(result.ok, false);
  assert.equal(result.code, 'refused');
  assert.match(
    result.detail,
    /did not apply db1's final position .* within 2000 ms; fence undone, db1 stays the writer/,
  );
  assert.deepEqual(h.sim.writable(), ['db1']);
  assert.ok(h.sim.host('db1').vips.has('127.0.1.100'));
  assert.ok(!h.sim.host('db2').vips.has('127.0.1.100'));
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db1');
  assert.equal(h.engine.snapshot().operation, undefined);
  assert.deepEqual(h.sim.violations, []);
  assert.ok(h.events().includes('refused:switchover.refused:db2'));
});

test('--force skips only the catch-up wait, loudly', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.waitAnswer = () => false;
  const result = await h.engine.moveRole('writer', 'db2', { force: true });
  assert.equal(result.ok, true, result.detail);
  assert.ok(!h.sim.calls.some((call) => call.startsWith('waitForGtid')));
  assert.ok(h.sim.calls.includes('fence:db1'), 'the fence still happens');
  assert.deepEqual(h.sim.writable(), ['db2']);
  const warning = h.journal.entries.find((entry) => entry.event === 'switchover.force');
  assert.match(warning?.reason ?? '', /NOT waiting/);
  assert.deepEqual(h.sim.violations, []);
});

test('a failed fence leaves the writer in place', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.failOn.add('fence:db1');
  const result = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(result.ok, false);
  assert.equal(result.code, 'failed');
  assert.deepEqual(h.sim.writable(), ['db1']);
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db1');
});

test('promotion that throws after read_only=OFF took effect: rolled back and proved read-only before the old writer is unfenced', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.failAfter.add('setReadOnly:db2:false');
  const result = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(result.ok, false);
  assert.match(
    result.detail,
    /db2 is read-only again \(read back\); fence undone, db1 stays the writer/,
  );
  assert.deepEqual(h.sim.writable(), ['db1']);
  assert.deepEqual(h.sim.violations, []);
});

test('promotion that throws after it took effect, and the rollback fails too: the old writer stays fenced', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.failAfter.add('setReadOnly:db2:false');
  h.sim.failOn.add('setReadOnly:db2:true');
  const result = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(result.ok, false);
  assert.match(result.detail, /could not be proved read-only again/);
  assert.match(result.detail, /db1 stays fenced/);
  assert.ok(!h.sim.calls.includes('setReadOnly:db1:false'), 'the fence of db1 is not undone');
  assert.deepEqual(h.sim.violations, [], 'never two writable hosts');
  assert.equal(h.engine.snapshot().operation, undefined);
});

test('move-role refuses an ineligible or unknown target with a reason', async () => {
  const h = harness();
  await h.cycle({ db1: 'ONLINE', db2: 'AWAITING_RECOVERY', db3: 'ONLINE' });
  h.sim.calls.length = 0;
  const held = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(held.code, 'refused');
  assert.match(held.detail, /db2 may not hold writer: it is AWAITING_RECOVERY/);
  assert.equal((await h.engine.moveRole('writer', 'db3', { force: false })).code, 'refused');
  assert.equal((await h.engine.moveRole('nope', 'db2', { force: false })).code, 'not_found');
  assert.equal((await h.engine.moveRole('writer', 'db9', { force: false })).code, 'not_found');
  assert.deepEqual(h.sim.calls, []);
});

test('move-role of a balanced role moves one IP to the host', async () => {
  const h = harness();
  await h.cycle(healthy);
  const result = await h.engine.moveRole('reader', 'db3', { force: false });
  assert.equal(result.ok, true);
  assert.match(result.detail, /already holds/);
  await h.engine.setOffline('db3');
  assert.deepEqual([...h.sim.host('db3').vips], []);
  const counts = Object.values(h.engine.snapshot().roles.reader ?? {});
  assert.ok(!counts.includes('db3'));
});

test('set-offline of the writer moves the writer away first; refused when there is no other candidate', async () => {
  const h = harness();
  await h.cycle(healthy);
  const result = await h.engine.setOffline('db1');
  assert.equal(result.ok, true, result.detail);
  assert.deepEqual(h.sim.writable(), ['db2']);
  assert.equal(h.engine.snapshot().hosts.db1?.state, 'ADMIN_OFFLINE');
  assert.ok(!Object.values(h.engine.snapshot().roles.reader ?? {}).includes('db1'));
  // The monitor's next (older) copy of db1 does not undo the operator's set-offline.
  await h.cycle();
  assert.equal(h.engine.snapshot().hosts.db1?.state, 'ADMIN_OFFLINE');

  const alone = harness({
    state: clusterState({ db1: 'ONLINE', db2: 'ADMIN_OFFLINE', db3: 'ONLINE' }),
  });
  await alone.cycle({ db1: 'ONLINE', db2: 'ADMIN_OFFLINE', db3: 'ONLINE' });
  const refusedResult = await alone.engine.setOffline('db1');
  assert.equal(refusedResult.code, 'refused');
  assert.match(refusedResult.detail, /only writer candidate/);
  assert.deepEqual(alone.sim.writable(), ['db1']);
});

for (const step of ['fencing', 'catching_up', 'promoting'] as const) {
  test(`restart in the middle of a switchover (step ${step}, target still read-only): the old writer gets its writes back`, async () => {
    const state = clusterState(healthy);
    state.operation = {
      kind: 'switchover',
      role: 'writer',
      from: 'db1',
      to: 'db2',
      startedAt: 1,
      step,
    };
    const h = harness({ state });
    // The killed manager had fenced db1 and removed its VIP.
    h.sim.host('db1').readOnly = true;
    h.sim.host('db1').vips.delete('127.0.1.100');
    await h.cycle(healthy);
    assert.deepEqual(h.sim.writable(), ['db1']);
    assert.ok(h.sim.host('db1').vips.has('127.0.1.100'));
    assert.equal(h.engine.snapshot().operation, undefined);
    assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db1');
    assert.ok(h.events().includes('note:operation.undone:db1'));
    assert.deepEqual(h.sim.violations, []);
  });
}

test('restart after the target became writable: the switchover is finished, not undone', async () => {
  const state = clusterState(healthy);
  state.operation = {
    kind: 'move-role',
    role: 'writer',
    from: 'db1',
    to: 'db2',
    startedAt: 1,
    step: 'promoting',
  };
  const h = harness({ state });
  h.sim.host('db1').readOnly = true;
  h.sim.host('db1').vips.delete('127.0.1.100');
  h.sim.host('db2').readOnly = false; // crash between read_only=OFF and saving the next step
  await h.cycle(healthy);
  assert.deepEqual(h.sim.writable(), ['db2']);
  assert.ok(h.sim.host('db2').vips.has('127.0.1.100'));
  assert.equal(h.sim.host('db3').master, 'db2');
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
  assert.equal(h.engine.snapshot().operation, undefined);
  assert.ok(h.events().includes('note:operation.finished:db2'));
  assert.deepEqual(
    h.engine.snapshot().pinned,
    { writer: 'db2' },
    'the operator placement survives: prefer does not pull it back',
  );
  await h.cycle(healthy);
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
});

test('restart mid-failover before promotion: abandoned and re-decided from evidence', async () => {
  const state = clusterState({
    db1: 'HARD_OFFLINE',
    db2: 'REPLICATION_FAIL',
    db3: 'REPLICATION_FAIL',
  });
  state.operation = {
    kind: 'failover',
    role: 'writer',
    from: 'db1',
    to: 'db2',
    startedAt: 1,
    step: 'repointing',
  };
  const h = harness({ state });
  h.sim.killHost('db1');
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' });
  assert.ok(h.events().includes('note:operation.abandoned:db2'));
  assert.deepEqual(h.sim.writable(), ['db2'], 'the fresh failover decision promoted db2');
  assert.equal(h.engine.snapshot().operation, undefined);
  assert.deepEqual(h.sim.violations, []);
});

test('every action has a journal entry before and after it, paired by action id', async () => {
  const h = harness();
  await h.cycle(healthy);
  await h.engine.moveRole('writer', 'db2', { force: false });
  h.sim.killHost('db2');
  await h.cycle({ db1: 'REPLICATION_FAIL', db2: 'HARD_OFFLINE', db3: 'REPLICATION_FAIL' });
  const before = h.journal.entries.filter((entry) => entry.phase === 'before');
  const after = h.journal.entries.filter((entry) => entry.phase === 'after');
  assert.ok(before.length >= 10, `${before.length} actions`);
  assert.equal(before.length, after.length);
  for (const entry of before) {
    const done = after.find((item) => item.action === entry.action);
    assert.ok(done && done.seq > entry.seq, `no after for ${entry.event} ${entry.action}`);
    assert.ok(entry.reason, `${entry.event} has a reason`);
  }
  assert.deepEqual(h.sim.writable(), ['db1']);
  assert.deepEqual(h.sim.violations, []);
});

test("set-offline right after a switchover: the cycle's older copy shows the new writer behind the old one, live reads show it caught up, and the move goes ahead", async () => {
  const h = harness();
  // The cycle sampled db1 (the writer now) before it applied db2's and db3's last transactions.
  Object.assign(h.sim.host('db1'), { binlogState: '0-1-100,0-2-65' });
  Object.assign(h.sim.host('db2'), { binlogState: '0-1-100,0-2-66' });
  Object.assign(h.sim.host('db3'), { binlogState: '0-1-100,0-2-66' });
  await h.cycle(healthy);
  // By the time the operator asks, db1 has them.
  Object.assign(h.sim.host('db1'), { binlogState: '0-1-100,0-2-66' });
  const result = await h.engine.setOffline('db1');
  assert.equal(result.ok, true, result.detail);
  assert.equal(h.sim.writable().length, 1);
  assert.notDeepEqual(h.sim.writable(), ['db1']);
});

test('set-offline is still refused when live reads confirm the errant transactions', async () => {
  const h = harness();
  Object.assign(h.sim.host('db1'), { binlogState: '0-1-100,0-2-65' });
  Object.assign(h.sim.host('db2'), { binlogState: '0-1-100,0-2-66' });
  Object.assign(h.sim.host('db3'), { binlogState: '0-1-100,0-2-66' });
  await h.cycle(healthy);
  const result = await h.engine.setOffline('db1');
  assert.equal(result.code, 'refused');
  assert.match(result.detail, /db2: has transactions the writer lacks \(0-2-66\)/);
  assert.deepEqual(h.sim.writable(), ['db1']);
});
