import assert from 'node:assert/strict';
import { test } from 'node:test';
import { holderOf } from '../../src/engine/roles.js';
import { clusterState, harness } from './engine-fakes.js';

const down = { db1: 'HARD_OFFLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' } as const;

test('passive mode: a failover is planned with the dry-run actuator and journaled once, nothing changes', async () => {
  const state = clusterState({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  state.mode = 'passive';
  const h = harness({ state });
  h.sim.killHost('db1');
  await h.cycle(down);
  await h.cycle(down);
  assert.deepEqual(h.sim.calls, [], 'the live actuator was never called');
  assert.deepEqual(h.sim.writable(), []);
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db1', 'roles unchanged');
  assert.equal(h.engine.snapshot().operation, undefined);
  const planned = h.journal.entries.filter((entry) => entry.outcome === 'dry-run');
  assert.ok(
    planned.some(
      (entry) =>
        entry.event === 'mysql.set_read_only' &&
        entry.host === 'db2' &&
        entry.detail === 'SET GLOBAL read_only=OFF',
    ),
    JSON.stringify(planned, null, 1),
  );
  assert.ok(planned.some((entry) => entry.event === 'failover.decided'));
  const count = planned.length;
  await h.cycle(down);
  assert.equal(
    h.journal.entries.filter((entry) => entry.outcome === 'dry-run').length,
    count,
    'the same plan is not journaled every cycle',
  );
});

test('passive mode does not even enforce read_only; it plans it', async () => {
  const state = clusterState({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  state.mode = 'passive';
  const h = harness({ state });
  h.sim.host('db3').readOnly = false;
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.deepEqual(h.sim.calls, []);
  assert.ok(
    h.journal.entries.some(
      (entry) =>
        entry.outcome === 'dry-run' &&
        entry.event === 'mysql.set_read_only' &&
        entry.host === 'db3',
    ),
  );
});

test('passive mode: operator commands are planned and refused with the plan', async () => {
  const state = clusterState({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  state.mode = 'passive';
  const h = harness({ state });
  await h.cycle();
  const result = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(result.ok, false);
  assert.equal(result.code, 'refused');
  assert.match(result.detail, /passive mode: planned only/);
  assert.ok(
    result.steps?.some((step) => step.includes('read_only=OFF')),
    JSON.stringify(result.steps),
  );
  assert.deepEqual(h.sim.calls, []);
  assert.equal((await h.engine.setOffline('db3')).code, 'refused');
});

test('manual mode: monitor-triggered decisions are deferred, read_only is still enforced, operator commands act', async () => {
  const state = clusterState({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  state.mode = 'manual';
  const h = harness({ state });
  h.sim.host('db3').readOnly = false;
  h.sim.killHost('db1');
  await h.cycle(down);
  assert.deepEqual(h.sim.calls, ['setReadOnly:db3:true'], 'only the safety invariant acted');
  const deferred = h.journal.entries.filter((entry) => entry.outcome === 'skipped');
  assert.ok(
    deferred.some(
      (entry) =>
        entry.event === 'failover.decided' && /manual mode: deferred/.test(entry.reason ?? ''),
    ),
    JSON.stringify(deferred, null, 1),
  );
  const decisions = await h.engine.handleAlerts([
    {
      status: 'firing',
      name: 'SwitchyardWriterDown',
      labels: { host: 'db1' },
      annotations: {},
      startsAt: '2026-01-01T00:00:00Z',
      fingerprint: 'a',
    },
  ]);
  assert.equal(decisions[0]?.decision, 'deferred');
  assert.deepEqual(h.sim.writable(), []);
  // The operator acts.
  const moved = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(
    moved.code,
    'refused',
    'the dead writer cannot be fenced: a planned switchover refuses',
  );
  await h.engine.setMode('active', 'operator: let the engine fail over');
  await h.cycle(down);
  assert.deepEqual(h.sim.writable(), ['db2']);
});

test('not the leader: nothing acts, decisions are planned', async () => {
  const h = harness();
  h.leader.value = false;
  h.sim.killHost('db1');
  await h.cycle(down);
  assert.deepEqual(h.sim.calls, []);
  assert.ok(
    h.journal.entries.some(
      (entry) => entry.outcome === 'dry-run' && entry.event === 'failover.decided',
    ),
  );
  const decisions = await h.engine.handleAlerts([
    {
      status: 'firing',
      name: 'SwitchyardWriterDown',
      labels: { host: 'db1' },
      annotations: {},
      startsAt: '2026-01-01T00:00:00Z',
    },
  ]);
  assert.equal(decisions[0]?.decision, 'ignored');
  assert.match(decisions[0]?.reason ?? '', /not the leader/);
  h.leader.value = true;
  await h.cycle(down);
  assert.deepEqual(h.sim.writable(), ['db2']);
});

test('setMode is journaled, persisted and exported', async () => {
  const h = harness();
  const result = await h.engine.setMode('manual', 'maintenance window');
  assert.equal(result.ok, true);
  assert.equal(h.store.saved?.mode, 'manual');
  assert.equal(h.store.saved?.modeReason, 'maintenance window');
  assert.ok(h.events().includes('decision:mode.changed'));
  assert.match(
    (await h.metrics.render()).body,
    /switchyard_mode\{mode="manual",cluster="test"\} 1/,
  );
});
