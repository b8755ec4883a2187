import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IncomingAlert } from '../../src/engine/types.js';
import { holderOf } from '../../src/engine/roles.js';
import { harness, testConfig } from './engine-fakes.js';

const healthy = { db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' } as const;

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

test('lag alert contradicted by the live lag is ignored and changes nothing', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.host('db3').lag = 0.4;
  await h.cycle(healthy);
  const [decision] = await h.engine.handleAlerts([alert('SwitchyardReplicationLagHigh', 'db3')]);
  assert.equal(decision?.decision, 'ignored');
  assert.match(
    decision?.reason ?? '',
    /contradicted by live state: db3's current lag is 0.4s, below max_lag 10s/,
  );
  assert.deepEqual(h.sim.calls, []);
});

test('lag alert confirmed: reader IPs leave the host; resolved: they come back; replay does nothing', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.host('db3').lag = 42;
  await h.cycle(healthy);
  const firing = alert('SwitchyardReplicationLagHigh', 'db3');
  const [decision] = await h.engine.handleAlerts([firing]);
  assert.equal(decision?.decision, 'acted', decision?.reason);
  assert.equal(decision?.host, 'db3');
  assert.ok(!Object.values(h.engine.snapshot().roles.reader ?? {}).includes('db3'));
  assert.deepEqual([...h.sim.host('db3').vips], []);
  assert.deepEqual(h.engine.snapshot().dropped, { db3: ['reader'] });
  const callsAfterFiring = h.sim.calls.length;
  const [replay] = await h.engine.handleAlerts([firing]);
  assert.equal(replay?.decision, 'ignored');
  assert.match(replay?.reason ?? '', /duplicate/);
  assert.equal(h.sim.calls.length, callsAfterFiring);
  // The monitor's cycles do not give the role back while the alert fires.
  await h.cycle(healthy);
  assert.ok(!Object.values(h.engine.snapshot().roles.reader ?? {}).includes('db3'));
  h.sim.host('db3').lag = 0;
  const [resolved] = await h.engine.handleAlerts([
    { ...firing, status: 'resolved', endsAt: '2026-01-01T00:05:00Z' },
  ]);
  assert.equal(resolved?.decision, 'acted', resolved?.reason);
  assert.ok(Object.values(h.engine.snapshot().roles.reader ?? {}).includes('db3'));
  assert.equal(h.engine.snapshot().dropped, undefined);
});

test('writer-down alert for a writer the manager reaches is ignored', async () => {
  const h = harness();
  await h.cycle(healthy);
  const [decision] = await h.engine.handleAlerts([alert('SwitchyardWriterDown', 'db1')]);
  assert.equal(decision?.decision, 'ignored');
  assert.match(decision?.reason ?? '', /the manager reaches db1/);
  assert.deepEqual(h.sim.calls, []);
});

test('writer-down alert, writer dead on evidence: failover even with the monitor trigger off', async () => {
  const h = harness({
    config: testConfig({
      triggers: { alertmanager: true, monitor: false, pipeline_timeout: '2m' },
    }),
  });
  await h.cycle(healthy);
  h.engine.notePipelineAlive();
  h.sim.killHost('db1');
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' });
  assert.deepEqual(
    h.sim.writable(),
    [],
    'the monitor trigger is off and the pipeline is up: the monitor does not decide',
  );
  const [decision] = await h.engine.handleAlerts([alert('SwitchyardWriterDown', 'db1')]);
  assert.equal(decision?.decision, 'acted', decision?.reason);
  assert.deepEqual(h.sim.writable(), ['db2']);
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
});

test('a resend of an alert that was ignored as contradicted is evaluated afresh, not dropped as a duplicate', async () => {
  const h = harness({
    config: testConfig({
      triggers: { alertmanager: true, monitor: false, pipeline_timeout: '2m' },
    }),
  });
  await h.cycle(healthy);
  const firing = alert('SwitchyardWriterDown', 'db1');
  const [first] = await h.engine.handleAlerts([firing]);
  assert.equal(first?.decision, 'ignored');
  assert.match(first?.reason ?? '', /the manager reaches db1/);
  // The same alert (same fingerprint and startsAt) is resent after the writer really died.
  h.sim.killHost('db1');
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' });
  const [resend] = await h.engine.handleAlerts([firing]);
  assert.equal(resend?.decision, 'acted', resend?.reason);
  assert.deepEqual(h.sim.writable(), ['db2']);
  const [again] = await h.engine.handleAlerts([firing]);
  assert.equal(again?.decision, 'ignored');
  assert.match(again?.reason ?? '', /duplicate: already handled at /);
});

test('writer-down alert while replicas still see the writer: refused with the evidence', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.host('db1').reachable = false;
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'ONLINE', db3: 'ONLINE' });
  const [decision] = await h.engine.handleAlerts([alert('SwitchyardWriterDown', 'db1')]);
  assert.equal(decision?.decision, 'refused', decision?.reason);
  assert.match(
    decision?.reason ?? '',
    /db2 \(IO thread connected\), db3 \(IO thread connected\) still see it/,
  );
  assert.ok(!h.sim.calls.some((call) => call.startsWith('setReadOnly')));
  assert.equal(h.engine.snapshot().dropped, undefined, 'a refused move leaves no drop behind');
  // The manager's path comes back: no switchover is triggered by the refused alert.
  h.sim.host('db1').reachable = true;
  await h.cycle(healthy);
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db1');
  assert.ok(!h.sim.calls.some((call) => call.startsWith('fence')));
});

test('unknown alerts, missing host labels and stale alerts are ignored with a reason', async () => {
  const h = harness();
  await h.cycle(healthy);
  const decisions = await h.engine.handleAlerts([
    alert('SomethingElse', 'db1'),
    { ...alert('SwitchyardReplicationLagHigh', 'db1'), labels: {} },
    alert('SwitchyardReplicationLagHigh', 'db9'),
    alert('SwitchyardWriterDown', 'db2', { fingerprint: 'x' }),
    alert('SwitchyardReplicationBroken', 'db3', { endsAt: '2020-01-01T00:00:00Z' }),
  ]);
  assert.deepEqual(
    decisions.map((item) => item.decision),
    ['ignored', 'ignored', 'ignored', 'ignored', 'ignored'],
  );
  assert.match(decisions[0]?.reason ?? '', /no rule/);
  assert.match(decisions[1]?.reason ?? '', /no "host" label/);
  assert.match(decisions[2]?.reason ?? '', /unknown host/);
  assert.match(decisions[3]?.reason ?? '', /manager reaches db2/);
  assert.match(decisions[4]?.reason ?? '', /stale/);
  assert.deepEqual(h.sim.calls, []);
});

test('watchdog and pipeline metric: without webhooks for pipeline_timeout the monitor decides alone', async () => {
  let now = 1_000_000;
  const config = testConfig({
    triggers: { alertmanager: true, monitor: false, pipeline_timeout: '2m' },
  });
  const h = harness({ config, now: () => now });
  const engine = h.engine;
  const [watchdog] = await engine.handleAlerts([alert('Watchdog', 'db1')]);
  assert.equal(watchdog?.decision, 'ignored');
  assert.equal(engine.pipelineUp(), true);
  assert.match(
    (await h.metrics.render()).body,
    /switchyard_alerting_pipeline_up\{cluster="test"\} 1/,
  );
  h.sim.killHost('db1');
  const downStates = {
    db1: 'HARD_OFFLINE',
    db2: 'REPLICATION_FAIL',
    db3: 'REPLICATION_FAIL',
  } as const;
  const incoming = engine.snapshot();
  for (const [name, state] of Object.entries(downStates))
    incoming.hosts[name] = { state, reason: 't', since: now, failures: 3, flaps: [] };
  await engine.onCycle(h.sim.observe(), incoming);
  assert.deepEqual(
    h.sim.writable(),
    [],
    'pipeline up, monitor trigger off: no action from the monitor',
  );
  now += 121_000;
  await engine.onCycle(h.sim.observe(), engine.snapshot());
  assert.equal(engine.pipelineUp(), false);
  assert.match(
    (await h.metrics.render()).body,
    /switchyard_alerting_pipeline_up\{cluster="test"\} 0/,
  );
  assert.deepEqual(h.sim.writable(), ['db2'], 'pipeline silent: the monitor alone decided');
});

test('triggers.alertmanager off: alerts are ignored', async () => {
  const h = harness({
    config: testConfig({
      triggers: { alertmanager: false, monitor: true, pipeline_timeout: '2m' },
    }),
  });
  await h.cycle(healthy);
  const [decision] = await h.engine.handleAlerts([alert('SwitchyardReplicationLagHigh', 'db3')]);
  assert.equal(decision?.decision, 'ignored');
  assert.match(decision?.reason ?? '', /triggers.alertmanager is off/);
});
