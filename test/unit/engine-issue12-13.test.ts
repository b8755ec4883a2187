/**
 * Regressions from a week of real faults: false divergence of a healthy old writer, "a writer beats
 * no writer" when the only complete candidate is held, and planned switchovers under write load.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errantTransactions } from '../../src/engine/errant.js';
import { mariadbGtid } from '../../src/mysql/gtid.js';
import { holderOf } from '../../src/engine/roles.js';
import type { IncomingAlert } from '../../src/engine/types.js';
import { harness, record, testConfig } from './engine-fakes.js';

const healthy = { db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' } as const;

test('errant: a transaction the writer wrote itself is never errant, even when the host is read a moment after the writer', () => {
  // The field report: promotion point 0-11-834 (db2 promoted from db1); db1 then replicated
  // db2's first write as the new writer, 0-12-896, and was sampled after db2.
  const errant = errantTransactions({
    host: { binlogState: '0-11-834,0-12-896', known: '0-12-896', serverId: 11 },
    writer: { binlogState: '0-11-834,0-12-895', known: '0-12-895', serverId: 12 },
    gtid: mariadbGtid,
    promotion: { host: 'db2', from: 'db1', position: '0-11-834' },
  });
  assert.deepEqual(errant, []);
});

test("errant: the same check without binlog states (older servers) skips the writer's own transactions too", () => {
  const errant = errantTransactions({
    host: { known: '0-11-1440', serverId: 12 },
    writer: { known: '0-11-1439', serverId: 11 },
    gtid: mariadbGtid,
  });
  assert.deepEqual(errant, []);
});

test('errant: writes an isolated old writer made after the promotion point are named exactly', () => {
  const errant = errantTransactions({
    host: { binlogState: '0-11-840,0-12-800', known: '0-11-840', serverId: 11 },
    writer: { binlogState: '0-11-834,0-12-900', known: '0-12-900', serverId: 12 },
    gtid: mariadbGtid,
    promotion: { host: 'db2', from: 'db1', position: '0-11-834' },
  });
  assert.deepEqual(errant, ['0-11-835..840']);
});

test("errant: a third host's transactions the writer never got are errant; ones it has are not", () => {
  const errant = errantTransactions({
    host: { binlogState: '0-11-834,0-12-900,0-13-5', known: '0-12-900', serverId: 13 },
    writer: { binlogState: '0-11-834,0-12-901', known: '0-12-901', serverId: 12 },
    gtid: mariadbGtid,
  });
  assert.deepEqual(errant, ['0-13-5']);
});

test("set-online of an old writer that only received the new writer's transactions succeeds (live reads, host first)", async () => {
  const h = harness();
  h.sim.killHost('db1');
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' });
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
  // db1 is back, replicating from db2, and shows db2's latest write before db2 is read.
  Object.assign(h.sim.host('db1'), {
    reachable: true,
    alive: true,
    agentUp: true,
    readOnly: true,
    master: 'db2',
    ioRunning: true,
    lastIoError: '',
    applied: '0-2-896',
    received: '0-2-896',
    binlogState: '0-1-100,0-2-896',
  });
  Object.assign(h.sim.host('db2'), { applied: '0-2-895', binlogState: '0-1-100,0-2-895' });
  await h.cycle({ db1: 'AWAITING_RECOVERY', db2: 'ONLINE', db3: 'ONLINE' });
  await h.cycle({ db1: 'AWAITING_RECOVERY', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(
    h.journal.entries.filter((entry) => entry.event === 'errant.detected').length,
    0,
    h.events().join('\n'),
  );
  const result = await h.engine.setOnline('db1');
  assert.equal(result.ok, true, result.detail);
});

test('set-online refuses, and says why, when the writer cannot be read live', async () => {
  const h = harness();
  await h.cycle(healthy);
  await h.engine.setOffline('db3');
  h.sim.host('db1').reachable = false;
  const result = await h.engine.setOnline('db3');
  assert.equal(result.ok, false);
  assert.match(result.detail, /cannot read the writer db1's GTID state live.*try again/);
});

test('a writer beats no writer: the only complete candidate is held for flapping, it is promoted and the journal says why', async () => {
  const h = harness();
  await h.cycle(healthy);
  const state = h.engine.snapshot();
  state.hosts.db2 = record('AWAITING_RECOVERY', {
    held: 'flapping: 4 state losses within 10m',
    since: Date.now() + 100,
  });
  h.sim.killHost('db1');
  await h.engine.onCycle(h.sim.observe(), {
    ...state,
    hosts: { ...state.hosts, db1: record('HARD_OFFLINE', { since: Date.now() + 100 }) },
  });
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2', h.events().join('\n'));
  assert.deepEqual(h.sim.writable(), ['db2']);
  const entry = h.journal.entries.find((item) => item.event === 'failover.promote_held');
  assert.match(
    entry?.reason ?? '',
    /held only for "flapping: 4 state losses within 10m".*a writer beats no writer/,
  );
  assert.equal(h.engine.snapshot().hosts.db2?.held, undefined);
});

test('promote_held off: the held candidate is not promoted and the refusal names it', async () => {
  const h = harness({ config: testConfig({ failover: { promote_held: false } }) });
  await h.cycle(healthy);
  const state = h.engine.snapshot();
  state.hosts.db2 = record('AWAITING_RECOVERY', { held: 'restarted', since: Date.now() + 100 });
  h.sim.killHost('db1');
  await h.engine.onCycle(h.sim.observe(), {
    ...state,
    hosts: { ...state.hosts, db1: record('HARD_OFFLINE', { since: Date.now() + 100 }) },
  });
  assert.equal(
    holderOf(h.engine.snapshot().roles, 'writer'),
    'db1',
    'the role stays with the dead writer: nobody was promoted',
  );
  assert.deepEqual(h.sim.writable(), []);
  assert.match(
    h.journal.entries.find((item) => item.event === 'failover.refused')?.reason ?? '',
    /db2: AWAITING_RECOVERY \(held\)/,
  );
});

function alert(name: string, host: string, extra: Partial<IncomingAlert> = {}): IncomingAlert {
  return {
    status: 'firing',
    name,
    labels: { alertname: name, host },
    annotations: {},
    startsAt: '2026-01-01T00:00:00Z',
    fingerprint: `${name}-${host}`,
    ...extra,
  };
}

/** Under write load the passive master is a few transactions behind the replica at decision time. */
function behindAReplica(h: ReturnType<typeof harness>): void {
  Object.assign(h.sim.host('db1'), { applied: '0-1-260', binlogState: '0-1-260' });
  Object.assign(h.sim.host('db2'), {
    applied: '0-1-254',
    received: '0-1-255',
    binlogState: '0-1-254',
  });
  Object.assign(h.sim.host('db3'), {
    applied: '0-1-256',
    received: '0-1-256',
    binlogState: '0-1-256',
  });
}

test('an alert-triggered switchover picks a live target that is behind a replica and waits for it after the fence', async () => {
  const h = harness({
    config: testConfig({
      rules: [{ alert: 'NodeDiskFailing', action: 'move_role', role: 'writer' }],
    }),
  });
  await h.cycle(healthy);
  behindAReplica(h);
  await h.cycle(healthy);
  const [decision] = await h.engine.handleAlerts([alert('NodeDiskFailing', 'db1')]);
  assert.equal(decision?.decision, 'acted', decision?.reason);
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
  const fence = h.sim.calls.indexOf('fence:db1');
  const wait = h.sim.calls.findIndex((call) => call.startsWith('waitForGtid:db2:'));
  const promote = h.sim.calls.indexOf('setReadOnly:db2:false');
  assert.ok(fence >= 0 && fence < wait && wait < promote, h.sim.calls.join('\n'));
  assert.deepEqual(h.sim.violations, []);
});

test('set-offline of the writer under load switches over to a target behind a replica', async () => {
  const h = harness();
  await h.cycle(healthy);
  behindAReplica(h);
  await h.cycle(healthy);
  const result = await h.engine.setOffline('db1');
  assert.equal(result.ok, true, result.detail);
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
  assert.deepEqual(h.sim.writable(), ['db2']);
});

test('a switchover target with transactions the writer lacks is not chosen', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.host('db1').binlogState = '0-1-100';
  Object.assign(h.sim.host('db2'), { binlogState: '0-1-100,0-2-7' });
  await h.cycle(healthy);
  const result = await h.engine.setOffline('db1');
  assert.equal(result.ok, false);
  assert.match(result.detail, /db2: has transactions the writer lacks \(0-2-7\)/);
});

test('roles moved by set-offline are saved: a restarted manager finds the VIPs where its state says', async () => {
  const h = harness();
  await h.cycle(healthy);
  const result = await h.engine.setOffline('db3');
  assert.equal(result.ok, true, result.detail);
  assert.ok(
    !Object.values(h.store.saved?.roles.reader ?? {}).includes('db3'),
    JSON.stringify(h.store.saved?.roles),
  );
  assert.deepEqual(h.store.saved?.roles, h.engine.snapshot().roles);
});

test("a writer the manager lost while the other hosts reached it comes back ONLINE and keeps the role (no switchover for the manager's broken path)", async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.host('db1').reachable = false; // only the manager's path: the replicas' IO threads stay connected
  h.sim.host('db1').failure = 'silent';
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(h.engine.managerPathBroken(), true);
  h.sim.host('db1').reachable = true;
  await h.cycle({ db1: 'AWAITING_RECOVERY', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db1');
  assert.equal(h.engine.snapshot().hosts.db1?.state, 'ONLINE');
  assert.ok(!h.sim.calls.some((call) => call.startsWith('fence')), h.sim.calls.join(' '));
  assert.ok(h.journal.entries.some((entry) => entry.event === 'writer.readmitted'));
});

test('an acted reader alert reconciles only the reader role: it does not fail the writer over (the writer alert does)', async () => {
  const h = harness({ config: testConfig({ triggers: { alertmanager: true, monitor: false } }) });
  await h.cycle(healthy);
  await h.engine.handleAlerts([]); // the alerting pipeline is alive: the monitor does not decide
  h.sim.killHost('db1');
  h.sim.host('db3').lag = 42;
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(
    holderOf(h.engine.snapshot().roles, 'writer'),
    'db1',
    'the monitor does not decide while the pipeline is up',
  );
  const [lag] = await h.engine.handleAlerts([alert('SwitchyardReplicationLagHigh', 'db3')]);
  assert.equal(lag?.decision, 'acted', lag?.reason);
  assert.equal(
    holderOf(h.engine.snapshot().roles, 'writer'),
    'db1',
    'a reader alert moved the writer',
  );
  assert.ok(!Object.values(h.engine.snapshot().roles.reader ?? {}).includes('db3'));
  const [down] = await h.engine.handleAlerts([alert('SwitchyardWriterDown', 'db1')]);
  assert.equal(down?.decision, 'acted', down?.reason);
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
});

test("a new writer's reader role, dropped by its ReplicationBroken alert when its master died, comes back once it is the writer", async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.killHost('db1');
  h.sim.host('db1').failure = 'silent';
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' }); // not HARD_OFFLINE yet: no failover
  const [broken] = await h.engine.handleAlerts([alert('SwitchyardReplicationBroken', 'db2')]);
  assert.equal(broken?.decision, 'acted', broken?.reason);
  assert.deepEqual(h.engine.snapshot().dropped?.db2, ['reader']);
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(h.engine.snapshot().dropped?.db2, undefined, h.events().join('\n'));
  assert.ok(Object.values(h.engine.snapshot().roles.reader ?? {}).includes('db2'));
  const [again] = await h.engine.handleAlerts([
    alert('SwitchyardReplicationBroken', 'db2', {
      fingerprint: 'again',
      startsAt: '2026-01-01T00:01:00Z',
    }),
  ]);
  assert.equal(again?.decision, 'ignored');
  assert.match(
    again?.reason ?? '',
    /db2 is the writer: its own replication is not held against it/,
  );
});
