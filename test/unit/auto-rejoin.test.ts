/** monitor.auto_rejoin (issue 22 item 8): when it runs, when it does not, and that it never loops. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RejoinOutcome } from '../../src/api/rejoin-routes.js';
import type { TransferJob } from '../../src/api/transfer-routes.js';
import type { LoadedConfig } from '../../src/config/load.js';
import type { ClusterState } from '../../src/domain/cluster-state.js';
import type { HostObservation } from '../../src/domain/observation.js';
import { AutoRejoin, AUTO_REJOIN_BACKOFF_MS } from '../../src/daemon/auto-rejoin.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { MemoryJournal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log.js';
import { clusterState, record, testConfig } from './engine-fakes.js';

const HELD = 'errant transactions: 3 the writer db2 lacks (0-1-101..103)';

function setup(options: { autoRejoin?: boolean; outcomes?: RejoinOutcome[] } = {}) {
  const base = testConfig();
  const config = {
    ...base,
    monitor: { ...base.monitor, auto_rejoin: options.autoRejoin ?? true },
  } as unknown as LoadedConfig;
  const journal = new MemoryJournal();
  const metrics = new SwitchyardMetrics('test', { processMetrics: false });
  const jobs = new Map<string, TransferJob>();
  const calls: string[] = [];
  const clock = { now: 1_000_000 };
  const flags = { leader: true, maintenance: new Set<string>() };
  const outcomes = [...(options.outcomes ?? [])];
  const auto = new AutoRejoin({
    config,
    journal,
    metrics,
    log: silentLogger,
    mayAct: () => flags.leader,
    inMaintenance: (host) => flags.maintenance.has(host),
    rejoin: async (host) => {
      calls.push(host);
      return outcomes.shift() ?? { kind: 'refused', detail: 'no more outcomes' };
    },
    jobs,
    now: () => clock.now,
  });
  const state: ClusterState = clusterState(
    { db1: 'AWAITING_RECOVERY', db2: 'ONLINE', db3: 'ONLINE' },
    { writer: { '127.0.1.100': 'db2' }, reader: {} },
  );
  state.hosts.db1 = record('AWAITING_RECOVERY', { held: HELD });
  const observations: HostObservation[] = ['db1', 'db2', 'db3'].map((host) => ({
    host,
    at: 1,
    reachable: true,
    checks: {},
  }));
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { auto, journal, metrics, jobs, calls, clock, flags, state, observations, settle };
}

function job(id: string, done = false, ok?: boolean): TransferJob {
  return {
    id,
    operation: 'rejoin',
    progress: {} as TransferJob['progress'],
    done,
    ok,
    notes: ['db1 is ONLINE again as a replica of db2'],
  };
}

test('off by default: nothing is tried', async () => {
  const s = setup({ autoRejoin: false });
  s.auto.consider(s.state, s.observations);
  await s.settle();
  assert.deepEqual(s.calls, []);
});

test('a held host is rejoined once, followed to the end, and reported with the saved file', async () => {
  const running = job('j1');
  const s = setup({
    outcomes: [
      {
        kind: 'reseeding',
        job: running,
        errant: ['0-1-101..103'],
        file: '/b/db1/errant.sql',
        from: 'db3',
      },
    ],
  });
  s.jobs.set('j1', running);
  s.auto.consider(s.state, s.observations);
  s.auto.consider(s.state, s.observations); // while starting: not again
  await s.settle();
  s.auto.consider(s.state, s.observations); // while running: not again
  await s.settle();
  assert.deepEqual(s.calls, ['db1']);
  assert.equal(s.auto.last?.state, 'running');
  assert.equal(s.auto.last?.file, '/b/db1/errant.sql');
  running.done = true;
  running.ok = true;
  s.auto.consider(s.state, s.observations);
  assert.equal(s.auto.last?.state, 'ok');
  const events = s.journal.entries.map((entry) => `${entry.phase}:${entry.event}`);
  assert.deepEqual(events, [
    'decision:auto_rejoin.decided',
    'note:auto_rejoin.started',
    'after:auto_rejoin.done',
  ]);
  const body = (await s.metrics.render()).body;
  assert.match(body, /switchyard_auto_rejoins_total\{result="started",cluster="test"\} 1/);
  assert.match(body, /switchyard_auto_rejoins_total\{result="ok",cluster="test"\} 1/);
});

test('not in passive mode, not on a follower, not in maintenance, not for an unreachable host or one held otherwise', async () => {
  const s = setup({ outcomes: [] });
  s.state.mode = 'passive';
  s.auto.consider(s.state, s.observations);
  s.state.mode = 'active';
  s.flags.leader = false;
  s.auto.consider(s.state, s.observations);
  s.flags.leader = true;
  s.flags.maintenance.add('db1');
  s.auto.consider(s.state, s.observations);
  s.flags.maintenance.clear();
  const unreachable = s.observations.map((obs) =>
    obs.host === 'db1' ? { ...obs, reachable: false } : obs,
  );
  s.auto.consider(s.state, unreachable);
  s.state.hosts.db1 = record('AWAITING_RECOVERY', { held: 'restarted' });
  s.auto.consider(s.state, s.observations);
  await s.settle();
  assert.deepEqual(s.calls, []);
});

test('a refusal is journalled with what transfers need, and the host is not tried again before the back-off', async () => {
  const s = setup({
    outcomes: [
      {
        kind: 'refused',
        detail: 'db1 has no agent URL (hosts.db1.agent): copies travel between agents',
      },
      { kind: 'refused', detail: 'still no agent' },
    ],
  });
  s.auto.consider(s.state, s.observations);
  await s.settle();
  for (let i = 0; i < 5; i++) {
    s.clock.now += 1000;
    s.auto.consider(s.state, s.observations);
    await s.settle();
  }
  assert.deepEqual(s.calls, ['db1'], 'no loop');
  const failed = s.journal.entries.find((entry) => entry.event === 'auto_rejoin.failed');
  assert.match(failed?.detail ?? '', /auto_rejoin needs an agent with transfers configured/);
  assert.match(failed?.detail ?? '', /stays held, next attempt not before/);
  s.clock.now += AUTO_REJOIN_BACKOFF_MS;
  s.auto.consider(s.state, s.observations);
  await s.settle();
  assert.deepEqual(s.calls, ['db1', 'db1'], 'tried again after the back-off');
  s.clock.now += AUTO_REJOIN_BACKOFF_MS; // the back-off doubled
  s.auto.consider(s.state, s.observations);
  await s.settle();
  assert.equal(s.calls.length, 2);
});
