/**
 * Issue 22 item 5: errant transactions hold a host. auto_set_online, role eligibility and the
 * `prefer` switch-back refuse a host with transactions the writer lacks; the operator decides
 * (rejoin --discard-errant, or set-online --accept-errant).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterState } from '../../src/domain/cluster-state.js';
import { holderOf } from '../../src/engine/roles.js';
import { initialHostRecord, nextHostRecord } from '../../src/monitor/state-machine.js';
import { SimCluster, clusterState, harness, testConfig, type Harness } from './engine-fakes.js';

function rolesOf(state: ClusterState, host: string): string[] {
  return Object.entries(state.roles).flatMap(([role, ips]) =>
    Object.entries(ips)
      .filter(([, holder]) => holder === host)
      .map(([ip]) => `${role} ${ip}`),
  );
}

/** A monitor cycle as the daemon runs it: the real state machine over the engine's last state. */
function monitorLoop(h: Harness, clock: { now: number }, config = h.sim.config) {
  return async (): Promise<ClusterState> => {
    clock.now += 1000;
    const state = h.engine.snapshot();
    const observations = h.sim.observe(clock.now);
    const hosts = { ...state.hosts };
    const writer = holderOf(state.roles, 'writer');
    for (const observation of observations) {
      hosts[observation.host] = nextHostRecord(
        hosts[observation.host] ?? initialHostRecord(clock.now),
        observation,
        { isActiveWriter: observation.host === writer, monitor: config.monitor, now: clock.now },
      ).record;
    }
    return h.engine.onCycle(observations, { ...state, hosts });
  };
}

for (const autoSetOnline of ['2s', '500ms']) {
  test(`auto_set_online (${autoSetOnline}) does not bring back an old writer with errant writes, even while its replication runs`, async () => {
    const config = testConfig({
      monitor: { failures_before_down: 3, max_lag: '10s', auto_set_online: autoSetOnline },
    });
    const sim = SimCluster.standard(config);
    const clock = { now: 1_000_000 };
    const h = harness({ config, sim, now: () => clock.now });
    const cycle = monitorLoop(h, clock, config);
    await cycle();
    sim.host('db1').applied = '0-1-103'; // three writes db2 never received
    sim.killHost('db1');
    for (let i = 0; i < 6 && holderOf(h.engine.snapshot().roles, 'writer') !== 'db2'; i++)
      await cycle();
    assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2', h.events().join('\n'));
    for (let i = 0; i < 6 && h.engine.snapshot().hosts.db1?.state !== 'HARD_OFFLINE'; i++)
      await cycle();
    assert.equal(h.engine.snapshot().hosts.db1?.state, 'HARD_OFFLINE');
    // The new writer takes writes whose keys do not collide; the old writer comes back
    // read-only after a short outage and replicates from db2 without an error.
    for (const name of ['db2', 'db3']) {
      sim.host(name).applied = '0-2-110';
      sim.host(name).received = '0-2-110';
      sim.host(name).binlogState = '0-1-100,0-2-110';
    }
    Object.assign(sim.host('db1'), {
      reachable: true,
      alive: true,
      agentUp: true,
      readOnly: true,
      master: 'db2',
      binlogState: '0-1-103',
      ioRunning: true,
      sqlRunning: true,
      lastIoError: '',
      lag: 0,
    });
    for (let i = 0; i < 8; i++) {
      const state = await cycle();
      assert.deepEqual(rolesOf(state, 'db1'), [], `cycle ${i}: db1 holds no role`);
      assert.notEqual(state.hosts.db1?.state, 'ONLINE', `cycle ${i}: db1 is not ONLINE`);
    }
    const db1 = h.engine.snapshot().hosts.db1;
    assert.equal(db1?.state, 'AWAITING_RECOVERY');
    assert.match(
      db1?.held ?? '',
      /^errant transactions: 3 the writer db2 lacks \(0-1-101\.\.103\)/,
    );
    assert.match(db1?.reason ?? '', /rejoin db1 --discard-errant/);
    assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
    assert.deepEqual(sim.writable(), ['db2']);
    const holds = h.journal.entries.filter((entry) => entry.event === 'host.held_errant');
    assert.equal(holds.length, 1, 'journalled once, not every cycle');
    assert.deepEqual(sim.violations, []);
  });
}

test('a replica that got writes of its own loses its reader role and is held', async () => {
  const h = harness();
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.deepEqual(rolesOf(h.engine.snapshot(), 'db3'), ['reader 127.0.1.103']);
  h.sim.host('db1').binlogState = '0-1-100';
  h.sim.host('db2').binlogState = '0-1-100';
  h.sim.host('db3').binlogState = '0-1-100,0-3-7'; // a write made on db3 directly
  for (let i = 0; i < 3; i++) await h.cycle();
  const state = h.engine.snapshot();
  assert.equal(state.hosts.db3?.state, 'AWAITING_RECOVERY');
  assert.match(state.hosts.db3?.held ?? '', /0-3-7/);
  assert.deepEqual(rolesOf(state, 'db3'), [], 'no role is given to it');
  assert.ok(!h.sim.host('db3').vips.has('127.0.1.103'));
});

test('prefer does not switch the writer back to a host with transactions the writer lacks', async () => {
  const config = testConfig();
  const sim = new SimCluster(config);
  Object.assign(sim.host('db2'), { readOnly: false, master: 'db1', received: '0-1-100' });
  sim.host('db2').applied = '0-2-110';
  sim.host('db2').binlogState = '0-1-100,0-2-110';
  Object.assign(sim.host('db1'), { master: 'db2', received: '0-2-110', binlogState: '0-1-103' });
  sim.host('db1').applied = '0-1-103,0-2-110';
  Object.assign(sim.host('db3'), { master: 'db2', received: '0-2-110', applied: '0-2-110' });
  sim.host('db3').binlogState = '0-1-100,0-2-110';
  sim.host('db2').vips.add('127.0.1.100');
  sim.host('db1').vips.add('127.0.1.101');
  sim.host('db2').vips.add('127.0.1.102');
  sim.host('db3').vips.add('127.0.1.103');
  const h = harness({
    config,
    sim,
    state: clusterState(
      { db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' },
      {
        writer: { '127.0.1.100': 'db2' },
        reader: { '127.0.1.101': 'db1', '127.0.1.102': 'db2', '127.0.1.103': 'db3' },
      },
    ),
  });
  for (let i = 0; i < 3; i++) await h.cycle();
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
  assert.ok(
    !sim.calls.some((call) => call === 'fence:db2' || call === 'setReadOnly:db1:false'),
    sim.calls.join(' '),
  );
  assert.deepEqual(sim.writable(), ['db2']);
  assert.match(h.engine.snapshot().hosts.db1?.held ?? '', /0-1-101\.\.103/);
});

test('set-online --accept-errant is journalled and that set holds the host no more; a new one does', async () => {
  const h = harness();
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  h.sim.host('db1').binlogState = '0-1-100';
  h.sim.host('db3').binlogState = '0-1-100,0-3-7';
  for (let i = 0; i < 3; i++) await h.cycle();
  assert.match(h.engine.snapshot().hosts.db3?.held ?? '', /0-3-7/);

  const refused = await h.engine.setOnline('db3');
  assert.equal(refused.ok, false);
  assert.match(refused.detail, /--accept-errant/);
  assert.deepEqual(refused.errant, ['0-3-7'], 'the refusal names the set, not only its text');
  const accepted = await h.engine.setOnline('db3', { acceptErrant: true });
  assert.equal(accepted.ok, true, accepted.detail);
  assert.deepEqual(accepted.errant, ['0-3-7']);
  const entry = h.journal.entries.find((item) => item.event === 'host.errant_accepted');
  assert.match(entry?.reason ?? '', /OPERATOR ACCEPTED ERRANT TRANSACTIONS: db3 .*0-3-7/);
  for (let i = 0; i < 3; i++) await h.cycle();
  assert.equal(h.engine.snapshot().hosts.db3?.state, 'ONLINE');
  assert.equal(h.engine.snapshot().hosts.db3?.held, undefined);

  h.sim.host('db3').binlogState = '0-1-100,0-3-9';
  for (let i = 0; i < 3; i++) await h.cycle();
  assert.equal(h.engine.snapshot().hosts.db3?.state, 'AWAITING_RECOVERY');
  assert.match(h.engine.snapshot().hosts.db3?.held ?? '', /0-3-7\.\.9|0-3-9/);
});

test('a hold replaced by the monitor (the held host restarted) is put back while the transactions remain', async () => {
  const h = harness();
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  h.sim.host('db1').binlogState = '0-1-100';
  h.sim.host('db3').binlogState = '0-1-100,0-3-7';
  for (let i = 0; i < 3; i++) await h.cycle();
  assert.match(h.engine.snapshot().hosts.db3?.held ?? '', /^errant transactions/);
  // The monitor's record after a restart: AWAITING_RECOVERY, held "restarted".
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'AWAITING_RECOVERY' });
  await h.cycle();
  const db3 = h.engine.snapshot().hosts.db3;
  assert.equal(db3?.state, 'AWAITING_RECOVERY');
  assert.match(db3?.held ?? '', /^errant transactions: 1 the writer db1 lacks \(0-3-7\)/);
});
