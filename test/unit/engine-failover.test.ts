import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RESTART_IO_WAIT_MS } from '../../src/engine/failover.js';
import { holderOf } from '../../src/engine/roles.js';
import { SimCluster, clusterState, harness, testConfig } from './engine-fakes.js';

const down = { db1: 'HARD_OFFLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' } as const;

test('writer dead on evidence: failover to the candidate, replicas follow, VIP moves, never two writers', async () => {
  const h = harness();
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(h.sim.calls.length, 0, 'a healthy cluster needs no action');
  h.sim.killHost('db1');
  const state = await h.cycle(down);

  assert.deepEqual(h.sim.writable(), ['db2']);
  assert.equal(holderOf(state.roles, 'writer'), 'db2');
  assert.ok(h.sim.host('db2').vips.has('127.0.1.100'));
  assert.equal(h.sim.host('db3').master, 'db2');
  assert.equal(state.operation, undefined);
  assert.deepEqual(h.sim.violations, []);
  // Order: replicas stop fetching from the dead writer at once, relay log applied, old VIP fenced
  // (fails: host gone), writable, VIP; replicas follow after the promotion.
  const order = h.sim.calls.filter(
    (call) => !call.includes('127.0.1.10') || call.includes('127.0.1.100'),
  );
  assert.deepEqual(order, [
    'stopIoThread:db3',
    'waitForGtid:db2:0-1-100',
    'stopReplication:db2',
    'removeVip:db1:127.0.1.100',
    'setReadOnly:db2:false',
    'addVip:db2:127.0.1.100',
    'repoint:db3:db2',
  ]);
  const events = h.events();
  assert.ok(events.includes('decision:failover.decided:db2'));
  assert.ok(events.includes('before:mysql.set_read_only:db2'));
  assert.ok(events.includes('after:mysql.set_read_only:db2:ok'));
  assert.ok(
    events.includes('after:vip.remove:db1:failed'),
    'the failed fence of a dead host is journaled, not fatal',
  );
  assert.ok(events.includes('note:failover.done:db2'));
  // db1's reader IP went to a live host.
  assert.notEqual(state.roles.reader?.['127.0.1.101'], 'db1');
  const metrics = await h.metrics.render();
  assert.match(
    metrics.body,
    /switchyard_failovers_total\{role="writer",result="ok",cluster="test"\} 1/,
  );
  assert.ok(h.store.saved?.roles.writer?.['127.0.1.100'] === 'db2', 'the new writer is persisted');
});

test('the most advanced candidate wins and applies what it received first', async () => {
  const config = testConfig({
    roles: {
      writer: {
        exclusive: true,
        hosts: ['db1', 'db2', 'db3'],
        ips: ['127.0.1.100'],
        prefer: 'db1',
      },
      reader: { hosts: ['db1', 'db2', 'db3'], ips: ['127.0.1.101', '127.0.1.102', '127.0.1.103'] },
    },
  });
  const sim = SimCluster.standard(config);
  sim.host('db2').applied = '0-1-98';
  sim.host('db2').received = '0-1-98';
  sim.host('db3').applied = '0-1-99';
  sim.host('db3').received = '0-1-100';
  const h = harness({ config, sim });
  sim.killHost('db1');
  const state = await h.cycle(down);
  assert.equal(holderOf(state.roles, 'writer'), 'db3');
  assert.deepEqual(sim.writable(), ['db3']);
  assert.ok(sim.calls.includes('waitForGtid:db3:0-1-100'), sim.calls.join(' '));
  assert.ok(sim.calls.includes('repoint:db2:db3'));
  assert.ok(
    sim.calls.indexOf('waitForGtid:db3:0-1-100') < sim.calls.indexOf('setReadOnly:db3:false'),
  );
  assert.deepEqual(sim.violations, []);
});

test('a candidate missing transactions a replica has catches up from that replica, then is promoted', async () => {
  const sim = SimCluster.standard();
  sim.host('db2').applied = '0-1-98';
  sim.host('db2').received = '0-1-98';
  const h = harness({ sim });
  sim.killHost('db1');
  const state = await h.cycle(down);
  const order = sim.calls.filter(
    (call) => !call.includes('127.0.1.10') || call.includes('127.0.1.100'),
  );
  assert.deepEqual(
    order.slice(0, 2),
    ['repoint:db2:db3', 'waitForGtid:db2:0-1-100'],
    'db2 first replicates what it lacks from db3',
  );
  assert.ok(
    order.indexOf('setReadOnly:db2:false') > order.indexOf('waitForGtid:db2:0-1-100'),
    'promoted only after catching up',
  );
  assert.deepEqual(sim.writable(), ['db2']);
  assert.equal(holderOf(state.roles, 'writer'), 'db2');
  const decision = h.journal.entries.find((entry) => entry.event === 'failover.catch_up');
  assert.match(decision?.reason ?? '', /db2 lacks 0-1-99\.\.100 that db3 has/);
  assert.deepEqual(sim.violations, []);
});

test('refuses when no host has every transaction (the candidate has its own errant ones), and says which', async () => {
  const sim = SimCluster.standard();
  sim.host('db2').applied = '0-1-98,1-2-5';
  sim.host('db2').received = '0-1-98';
  const h = harness({ sim });
  sim.killHost('db1');
  const state = await h.cycle(down);
  assert.deepEqual(sim.writable(), [], 'no host is promoted');
  assert.equal(
    holderOf(state.roles, 'writer'),
    'db1',
    'the role stays recorded on the dead writer',
  );
  const refusal = h.journal.entries.find((entry) => entry.event === 'failover.refused');
  assert.ok(refusal, h.events().join('\n'));
  assert.match(refusal.reason ?? '', /db2 lacks 0-1-99\.\.100 that db3 has/);
  assert.ok(!sim.calls.some((call) => call.startsWith('setReadOnly:db2:false')));
  // Repeated cycles do not repeat the refusal in the journal.
  await h.cycle(down);
  await h.cycle(down);
  assert.equal(h.journal.entries.filter((entry) => entry.event === 'failover.refused').length, 1);
});

test('no failover when the manager lost the writer but a replica still sees it', async () => {
  const h = harness();
  h.sim.host('db1').reachable = false; // the manager's path only; replicas keep their IO threads
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'ONLINE', db3: 'ONLINE' });
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.ok(
    !h.sim.calls.some(
      (call) =>
        call.startsWith('setReadOnly') ||
        call.startsWith('waitForGtid') ||
        call.includes('127.0.1.100'),
    ),
    h.sim.calls.join(' '),
  );
  const withheld = h.journal.entries.filter((entry) => entry.event === 'failover.withheld');
  assert.equal(withheld.length, 1, 'journaled once while the condition lasts');
  assert.match(
    withheld[0]?.reason ?? '',
    /db2 \(IO thread connected\), db3 \(IO thread connected\) still see it/,
  );
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db1');
});

test("a port that refuses connections, with every replica's IO thread failing too, is evidence at once: no need to wait for HARD_OFFLINE", async () => {
  const h = harness();
  h.sim.killHost('db1');
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.deepEqual(h.sim.writable(), ['db2']);
  assert.match(
    h.journal.entries.find((entry) => entry.event === 'failover.decided')?.reason ?? '',
    /refusing connections.*the other hosts lost it too/,
  );
});

test('a silent writer (timeouts, no refusal) fails over only once HARD_OFFLINE', async () => {
  const h = harness();
  h.sim.killHost('db1');
  h.sim.host('db1').failure = 'silent';
  await h.cycle({ db1: 'ONLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' });
  assert.deepEqual(h.sim.writable(), []);
  assert.ok(!h.sim.calls.some((call) => call.startsWith('setReadOnly')));
  assert.match(
    h.journal.entries.find((entry) => entry.event === 'failover.withheld')?.reason ?? '',
    /not HARD_OFFLINE yet/,
  );
});

test('a candidate that does not apply its relay log in time is not promoted', async () => {
  const h = harness();
  h.sim.waitAnswer = () => false;
  h.sim.killHost('db1');
  const state = await h.cycle(down);
  assert.deepEqual(h.sim.writable(), []);
  assert.equal(state.operation, undefined);
  assert.match(
    h.journal.entries.find((entry) => entry.event === 'failover.refused')?.reason ?? '',
    /did not apply its relay log/,
  );
});

test('the old writer returns read-only in AWAITING_RECOVERY; its lost writes are named and block set-online', async () => {
  const h = harness();
  h.sim.host('db1').applied = '0-1-103'; // three writes db2 never received
  h.sim.killHost('db1');
  await h.cycle(down);
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
  // The new writer takes writes; the old one comes back after a restart, writable by its my.cnf.
  h.sim.host('db2').applied = '0-2-110';
  h.sim.host('db2').binlogState = '0-1-100,0-2-110';
  h.sim.host('db3').applied = '0-2-110';
  h.sim.host('db3').received = '0-2-110';
  h.sim.host('db3').binlogState = '0-1-100,0-2-110';
  const db1 = h.sim.host('db1');
  db1.binlogState = '0-1-103';
  db1.reachable = true;
  db1.alive = true;
  db1.agentUp = true;
  db1.readOnly = false;
  db1.master = 'db2';
  db1.ioRunning = false;
  db1.lastIoError = 'errant';
  const returning = { db1: 'AWAITING_RECOVERY', db2: 'REPLICATION_FAIL', db3: 'ONLINE' } as const;
  await h.cycle(returning);
  assert.deepEqual(h.sim.writable(), ['db2'], 'the returning writer was set read-only at once');
  assert.deepEqual(
    h.sim.violations,
    [],
    'the returning writer was made read-only by the first action',
  );
  await h.cycle(returning);
  const errant = h.journal.entries.find((entry) => entry.event === 'errant.detected');
  assert.ok(errant, h.events().join('\n'));
  assert.match(
    errant.reason ?? '',
    /db1 has 3 transaction\(s\) the writer db2 lacks: 0-1-101\.\.103/,
  );
  const metrics = await h.metrics.render();
  assert.match(metrics.body, /switchyard_errant_transactions\{host="db1",cluster="test"\} 3/);
  const online = await h.engine.setOnline('db1');
  assert.equal(online.ok, false);
  assert.equal(online.code, 'refused');
  assert.match(online.detail, /0-1-101\.\.103/);
  assert.equal(h.engine.snapshot().hosts.db1?.state, 'AWAITING_RECOVERY');
});

test('a returning old writer without lost writes can be set online; the new writer replicates from it again', async () => {
  const h = harness();
  h.sim.killHost('db1');
  await h.cycle(down);
  const db1 = h.sim.host('db1');
  Object.assign(db1, {
    reachable: true,
    alive: true,
    agentUp: true,
    readOnly: true,
    master: 'db2',
    ioRunning: true,
    lastIoError: '',
  });
  await h.cycle({ db1: 'AWAITING_RECOVERY', db2: 'REPLICATION_FAIL', db3: 'ONLINE' });
  const result = await h.engine.setOnline('db1');
  assert.equal(result.ok, true, result.detail);
  assert.ok(h.sim.calls.includes('startReplication:db2'));
  assert.equal(h.engine.snapshot().hosts.db1?.state, 'ONLINE');
  assert.equal(
    h.engine.snapshot().lastPromotion,
    undefined,
    'reconciled: the promotion point is dropped',
  );
  // prefer: db1 is ONLINE again, so the next monitor cycle switches the writer back, safely.
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db1');
  assert.deepEqual(h.sim.writable(), ['db1']);
  assert.deepEqual(h.sim.violations, []);
});

test('state from clusterState helper matches the sim', () => {
  assert.equal(holderOf(clusterState({ db1: 'ONLINE' }).roles, 'writer'), 'db1');
});

test('a writer VIP that could not be added is retried on later cycles', async () => {
  const h = harness();
  h.sim.killHost('db1');
  h.sim.failOn.add('addVip:db2:127.0.1.100');
  await h.cycle(down);
  assert.deepEqual(h.sim.writable(), ['db2']);
  assert.ok(!h.sim.host('db2').vips.has('127.0.1.100'));
  h.sim.failOn.clear();
  await h.cycle(down);
  assert.ok(h.sim.host('db2').vips.has('127.0.1.100'));
  const retries = h.sim.calls.filter((call) => call === 'addVip:db2:127.0.1.100').length;
  await h.cycle(down);
  assert.equal(
    h.sim.calls.filter((call) => call === 'addVip:db2:127.0.1.100').length,
    retries,
    'no retry once it is there',
  );
});

test("a refused failover starts its replicas' IO threads again, and one that hangs holds the engine no longer than the bound", async () => {
  const h = harness();
  h.sim.waitAnswer = () => false;
  h.sim.killHost('db1');
  // db1's mariadbd is gone: START SLAVE towards it never sees a running IO thread, and a stuck
  // server never answers at all.
  h.sim.hangOn.add('startIoThread:db3');
  h.sim.hangOn.add('startReplication:db3');
  const started = Date.now();
  const cycle = h.cycle(down);
  const within = await Promise.race([
    cycle.then(() => true),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), RESTART_IO_WAIT_MS + 3000)),
  ]);
  assert.ok(within, `the refused failover still held the engine after ${Date.now() - started} ms`);
  assert.ok(Date.now() - started < RESTART_IO_WAIT_MS + 1000, `${Date.now() - started} ms`);
  assert.ok(h.sim.calls.includes('startIoThread:db3:hung'), h.sim.calls.join(' '));
  const events = h.events();
  assert.ok(events.includes('refused:failover.refused:db2'), events.join('\n'));
  assert.ok(events.includes('note:failover.restart_io_pending:db1'), events.join('\n'));
  assert.deepEqual(h.sim.writable(), []);
});

test('a refused failover restarts only the IO threads it stopped, without waiting for them to reach the dead writer', async () => {
  const h = harness();
  h.sim.waitAnswer = () => false;
  h.sim.killHost('db1');
  await h.cycle(down);
  assert.ok(h.sim.calls.includes('stopIoThread:db3'));
  assert.ok(h.sim.calls.includes('startIoThread:db3'), h.sim.calls.join(' '));
  assert.ok(!h.sim.calls.includes('startReplication:db3'), h.sim.calls.join(' '));
  assert.equal(h.sim.host('db3').ioRunning, true);
  assert.ok(!h.events().includes('note:failover.restart_io_pending:db1'));
});
