import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IncomingAlert } from '../../src/engine/types.js';
import { holderOf } from '../../src/engine/roles.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { MemoryJournal } from '../../src/journal/journal.js';
import {
  SilenceWatcher,
  hostsInMaintenance,
  type Silence,
} from '../../src/maintenance/silences.js';
import { harness } from './engine-fakes.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const HOSTS = ['db1', 'db2', 'db3'];

function silence(
  id: string,
  matchers: Silence['matchers'],
  options: { startsAt?: number; endsAt?: number; state?: string } = {},
): Silence {
  return {
    id,
    matchers,
    startsAt: new Date(options.startsAt ?? NOW - 60_000).toISOString(),
    endsAt: new Date(options.endsAt ?? NOW + 3_600_000).toISOString(),
    createdBy: 'ops',
    comment: 'kernel upgrade',
    status: { state: options.state ?? 'active' },
  };
}
const eq = (name: string, value: string) => ({ name, value, isRegex: false, isEqual: true });

test('a silence puts the hosts whose {cluster, host} it matches in maintenance, as Alertmanager would match', () => {
  const inMaintenance = (silences: Silence[], now = NOW) =>
    [...hostsInMaintenance(silences, 'prod', HOSTS, now).keys()].sort();
  assert.deepEqual(inMaintenance([silence('a', [eq('host', 'db1')])]), ['db1']);
  assert.deepEqual(inMaintenance([silence('a', [eq('cluster', 'prod'), eq('host', 'db1')])]), [
    'db1',
  ]);
  assert.deepEqual(
    inMaintenance([silence('a', [eq('cluster', 'prod')])]),
    HOSTS,
    'the whole cluster',
  );
  assert.deepEqual(
    inMaintenance([silence('a', [eq('cluster', 'staging')])]),
    [],
    'another cluster',
  );
  assert.deepEqual(
    inMaintenance([
      silence('a', [eq('alertname', 'SwitchyardReplicationLagHigh'), eq('host', 'db3')]),
    ]),
    [],
    'one alert silenced, not the host',
  );
  assert.deepEqual(
    inMaintenance([
      silence('a', [{ name: 'host', value: 'db[12]', isRegex: true, isEqual: true }]),
    ]),
    ['db1', 'db2'],
    'regex, anchored',
  );
  assert.deepEqual(
    inMaintenance([silence('a', [{ name: 'host', value: 'db', isRegex: true }])]),
    [],
    'a regex matches the whole value',
  );
  assert.deepEqual(
    inMaintenance([
      silence('a', [
        eq('cluster', 'prod'),
        { name: 'host', value: 'db3', isRegex: false, isEqual: false },
      ]),
    ]),
    ['db1', 'db2'],
    'negative matcher',
  );
  assert.deepEqual(inMaintenance([silence('a', [eq('host', 'db1')], { state: 'expired' })]), []);
  assert.deepEqual(
    inMaintenance([silence('a', [eq('host', 'db1')], { endsAt: NOW - 1 })]),
    [],
    'ended by time, whatever the state said',
  );
  assert.deepEqual(
    inMaintenance([
      silence('a', [eq('host', 'db1')], { startsAt: NOW + 60_000, state: 'pending' }),
    ]),
    [],
    'not started yet',
  );
  assert.deepEqual(
    inMaintenance(
      [silence('a', [eq('host', 'db1')], { startsAt: NOW + 60_000, state: 'pending' })],
      NOW + 61_000,
    ),
    ['db1'],
    'started by time',
  );
  assert.deepEqual(inMaintenance([silence('a', [])]), [], 'no matchers: nothing');
});

test('SilenceWatcher: windows start and end in the journal and switchyard_maintenance; an unreachable Alertmanager keeps known silences until their endsAt and says so once', async () => {
  let now = NOW;
  let answer: () => Promise<Response> = async () =>
    Response.json([silence('s1', [eq('host', 'db1')], { endsAt: NOW + 10_000 })]);
  const journal = new MemoryJournal();
  const metrics = new SwitchyardMetrics('prod', { processMetrics: false });
  const watcher = new SilenceWatcher({
    url: 'http://127.0.0.1:9/',
    cluster: 'prod',
    hosts: HOSTS,
    intervalMs: 1000,
    journal,
    metrics,
    now: () => now,
    fetch: async () => answer(),
  });
  const gauge = async (host: string) =>
    (await metrics.maintenance.get()).values.find((value) => value.labels.host === host)?.value;
  assert.equal(await gauge('db1'), 0);

  await watcher.refresh();
  assert.deepEqual([...watcher.update()], ['db1']);
  assert.equal(await gauge('db1'), 1);
  assert.deepEqual(watcher.update(), new Set(['db1']), 'no new journal entry while it lasts');
  assert.deepEqual(
    journal.entries.map((entry) => `${entry.event}:${entry.host ?? ''}`),
    ['maintenance.start:db1'],
  );
  assert.match(journal.entries[0]?.reason ?? '', /silence s1 by ops until .* \(kernel upgrade\)/);
  assert.equal(watcher.status().hosts.db1?.silence, 's1');

  // Alertmanager goes away: the known silence still holds, the journal says silences could not be read (once).
  answer = async () => {
    throw new Error('connect ECONNREFUSED 127.0.0.1:9');
  };
  await watcher.refresh();
  await watcher.refresh();
  now = NOW + 5_000;
  assert.deepEqual([...watcher.update()], ['db1']);
  assert.equal(watcher.status().readable, false);
  assert.equal(
    journal.entries.filter((entry) => entry.event === 'maintenance.silences_unreadable').length,
    1,
  );
  assert.match(
    journal.entries.at(-1)?.reason ?? '',
    /silences could not be read .*ECONNREFUSED.*the 1 known before apply until their endsAt/,
  );

  // Its endsAt passes with Alertmanager still unreachable: maintenance ends all the same.
  now = NOW + 10_001;
  assert.deepEqual([...watcher.update()], []);
  assert.equal(await gauge('db1'), 0);
  assert.match(
    journal.entries.at(-1)?.reason ?? '',
    /db1 out of maintenance: its silence s1 ended at/,
  );

  // Readable again: journaled; an empty list ends nothing more.
  answer = async () => Response.json([]);
  await watcher.refresh();
  assert.equal(watcher.status().readable, true);
  assert.equal(journal.entries.at(-1)?.event, 'maintenance.silences_readable');
});

const healthy = { db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' } as const;
const writerDown = {
  db1: 'HARD_OFFLINE',
  db2: 'REPLICATION_FAIL',
  db3: 'REPLICATION_FAIL',
} as const;

test('engine: no failover away from a writer in maintenance; read_only is still enforced; when maintenance ends, the failover happens', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.engine.setMaintenance(new Set(['db1']));
  h.sim.killHost('db1');
  // A non-writer that turns writable is still made read-only.
  h.sim.host('db3').readOnly = false;
  await h.cycle(writerDown);
  let state = await h.cycle(writerDown);
  assert.equal(
    holderOf(state.roles, 'writer'),
    'db1',
    'the writer role stays on the host in maintenance',
  );
  assert.deepEqual(h.sim.writable(), [], 'db3 was set read-only again');
  assert.ok(h.sim.calls.includes('setReadOnly:db3:true'));
  assert.equal(
    state.roles.reader?.['127.0.1.101'],
    'db1',
    'its reader IP stays too: no role changes for it',
  );
  const withheld = h.journal.entries.filter((entry) => entry.event === 'failover.withheld');
  assert.equal(withheld.length, 1, 'journaled once while it lasts');
  assert.match(withheld[0]?.reason ?? '', /db1 holds writer and is in maintenance/);

  h.engine.setMaintenance(new Set());
  state = await h.cycle(writerDown);
  assert.equal(holderOf(state.roles, 'writer'), 'db2');
  assert.deepEqual(h.sim.writable(), ['db2']);
  assert.deepEqual(h.sim.violations, []);
});

test('engine: no automatic failover onto a host in maintenance, and no role moves to it', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.engine.setMaintenance(new Set(['db2']));
  h.sim.killHost('db1');
  const state = await h.cycle(writerDown);
  assert.equal(
    holderOf(state.roles, 'writer'),
    'db1',
    'the failover is refused: the only other candidate is in maintenance',
  );
  assert.deepEqual(h.sim.writable(), [], 'no writer rather than one in maintenance');
  const refusal = h.journal.entries.find((entry) => entry.event === 'failover.refused');
  assert.match(refusal?.reason ?? '', /no eligible candidate for writer: db2: .*in maintenance/);
  assert.deepEqual(
    Object.entries(state.roles.reader ?? {})
      .filter(([, holder]) => holder === 'db2')
      .map(([ip]) => ip),
    ['127.0.1.102'],
    'db2 keeps its reader IP and gains none',
  );
  assert.deepEqual(h.sim.violations, []);
});

test('engine: an alert does not drop roles from a host in maintenance; operator commands still act on it', async () => {
  const h = harness();
  await h.cycle(healthy);
  h.sim.host('db3').lag = 42;
  await h.cycle(healthy);
  h.engine.setMaintenance(new Set(['db3']));
  const alert: IncomingAlert = {
    status: 'firing',
    name: 'SwitchyardReplicationLagHigh',
    labels: { alertname: 'SwitchyardReplicationLagHigh', host: 'db3' },
    annotations: {},
    startsAt: '2026-01-01T00:00:00Z',
    fingerprint: 'lag-db3',
  };
  const [decision] = await h.engine.handleAlerts([alert]);
  assert.equal(decision?.decision, 'ignored');
  assert.match(decision?.reason ?? '', /db3 is in maintenance/);
  assert.equal(h.engine.snapshot().roles.reader?.['127.0.1.103'], 'db3');

  const moved = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(moved.ok, true, moved.detail);
  const offline = await h.engine.setOffline('db3');
  assert.equal(offline.ok, true, offline.detail);
  assert.notEqual(
    h.engine.snapshot().roles.reader?.['127.0.1.103'],
    'db3',
    'the operator took db3 offline: its reader IP moved',
  );
});
