/**
 * The analysis as a table: one row per situation it can name (enforced below), each a small
 * change to a healthy cluster, with what `why` must show for it. Then the engine's own use of
 * it: the metric set from the cycle, and the reason shown matching what the engine journaled.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyze, type ClusterSnapshot } from '../../src/analysis/analyze.js';
import { SITUATION_NAMES, type Blocker, type SituationName } from '../../src/analysis/types.js';
import { scopeFor } from '../../src/api/scopes.js';
import { renderAnalysis } from '../../src/cli/commands/why.js';
import { mariadbGtid } from '../../src/mysql/gtid.js';
import { clusterState, harness, record, SimCluster, testConfig } from './engine-fakes.js';

const NOW = 1_000_000;

/** A healthy cluster: db1 writer, db2 its master-master peer, db3 a replica; all agents answer. */
function healthy(config = testConfig()): { snapshot: ClusterSnapshot; sim: SimCluster } {
  const sim = SimCluster.standard(config);
  const snapshot: ClusterSnapshot = {
    at: NOW,
    config,
    writerRole: 'writer',
    state: clusterState({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' }),
    observations: new Map(sim.observe(NOW).map((obs) => [obs.host, obs])),
    gtid: mariadbGtid,
    disposition: { kind: 'act', reason: 'active' },
    monitorDecides: true,
    maintenance: new Map(),
    dropped: new Map(),
    pinned: new Map(),
    agents: new Map(
      ['db1', 'db2', 'db3'].map((host) => [
        host,
        {
          answering: true,
          leaseLapsed: false,
          held: [...sim.host(host).vips].sort(),
        },
      ]),
    ),
    lostSince: new Map(),
    errant: new Map(),
    conditions: new Map(),
    managerPathBroken: false,
    switchoverBackoffUntil: 0,
  };
  return { snapshot, sim };
}

/** Observations again after the sim changed. */
function observe(snapshot: ClusterSnapshot, sim: SimCluster): ClusterSnapshot {
  return { ...snapshot, observations: new Map(sim.observe(NOW).map((obs) => [obs.host, obs])) };
}

function withHost(
  snapshot: ClusterSnapshot,
  host: string,
  state: Parameters<typeof record>[0],
  extra: Parameters<typeof record>[1] = {},
): ClusterSnapshot {
  return {
    ...snapshot,
    state: { ...snapshot.state, hosts: { ...snapshot.state.hosts, [host]: record(state, extra) } },
  };
}

/** db1 (the writer) killed: port refused, HARD_OFFLINE, the others' agents' probes fail. */
function deadWriter(): { snapshot: ClusterSnapshot; sim: SimCluster } {
  const { snapshot, sim } = healthy();
  sim.killHost('db1');
  let next = withHost(observe(snapshot, sim), 'db1', 'HARD_OFFLINE');
  next = {
    ...next,
    agents: new Map([...next.agents].filter(([host]) => host !== 'db1')),
    lostSince: new Map([['db1', NOW - 3000]]),
    observerViews: new Map([
      ['db1', { hasAgent: true }],
      [
        'db2',
        {
          hasAgent: true,
          probe: { ok: false, refused: true, startedAt: NOW - 500, detail: 'ECONNREFUSED' },
        },
      ],
      [
        'db3',
        {
          hasAgent: true,
          probe: { ok: false, refused: true, startedAt: NOW - 500, detail: 'ECONNREFUSED' },
        },
      ],
    ]),
  };
  return { snapshot: next, sim };
}

interface Row {
  situation: SituationName;
  snapshot: () => ClusterSnapshot;
  host?: string;
  /** Blocker kinds `why` must show for it (the plan must then not run). */
  blockers?: Array<Blocker['kind']>;
  /** The plan's kind and target, when it must have one. */
  plan?: { kind: string; to?: string };
  acts?: boolean;
}

const rows: Row[] = [
  {
    situation: 'dead_writer',
    snapshot: () => deadWriter().snapshot,
    host: 'db1',
    plan: { kind: 'failover', to: 'db2' },
    acts: true,
  },
  {
    situation: 'dead_writer_and_some_replicas',
    snapshot: () => {
      const { snapshot, sim } = deadWriter();
      sim.host('db3').reachable = false;
      sim.host('db3').failure = 'silent';
      return withHost(observe(snapshot, sim), 'db3', 'HARD_OFFLINE');
    },
    host: 'db1',
    plan: { kind: 'failover', to: 'db2' },
    acts: true,
  },
  {
    situation: 'unreachable_writer',
    snapshot: () => {
      const { snapshot, sim } = healthy();
      sim.host('db1').reachable = false;
      sim.host('db1').failure = 'silent';
      return withHost({ ...observe(snapshot, sim), agents: new Map() }, 'db1', 'ONLINE', {
        failures: 1,
      });
    },
    host: 'db1',
    blockers: ['evidence_missing'],
  },
  {
    situation: 'hung_writer',
    snapshot: () => {
      const { snapshot, sim } = healthy();
      sim.host('db1').reachable = false;
      sim.host('db1').failure = 'silent';
      // db1's agent still answers; db2's and db3's agents have no fresh probe of it.
      return withHost(
        {
          ...observe(snapshot, sim),
          observerViews: new Map([
            ['db2', { hasAgent: true }],
            ['db3', { hasAgent: true }],
          ]),
        },
        'db1',
        'HARD_OFFLINE',
      );
    },
    host: 'db1',
    blockers: ['evidence_missing'],
  },
  {
    situation: 'isolated_writer',
    snapshot: () => {
      const { snapshot } = healthy();
      return {
        ...snapshot,
        agents: new Map(
          [...snapshot.agents].map(([host, agent]) => [
            host,
            host === 'db1' ? { ...agent, leaseLapsed: true } : agent,
          ]),
        ),
        conditions: new Map([
          ['writer.lease_lapsed', 'db1 holds writer but its agent reports its lease lapsed'],
        ]),
      };
    },
    host: 'db1',
    blockers: ['refusal'],
  },
  {
    situation: 'manager_path_broken',
    snapshot: () => {
      const { snapshot, sim } = healthy();
      sim.host('db1').reachable = false;
      sim.host('db1').failure = 'silent';
      return withHost(
        {
          ...observe(snapshot, sim),
          managerPathBroken: true,
          lostSince: new Map([['db1', NOW - 3000]]),
          observerViews: new Map([
            [
              'db2',
              {
                hasAgent: true,
                probe: { ok: true, refused: false, startedAt: NOW - 200, detail: 'ok' },
              },
            ],
            ['db3', { hasAgent: true }],
          ]),
        },
        'db1',
        'HARD_OFFLINE',
      );
    },
    host: 'db1',
    blockers: ['evidence_contradicts'],
  },
  {
    situation: 'no_writer',
    snapshot: () => {
      const { snapshot, sim } = healthy();
      sim.host('db1').readOnly = true;
      const next = observe(snapshot, sim);
      return {
        ...next,
        state: { ...next.state, roles: { ...next.state.roles, writer: { '127.0.1.100': null } } },
      };
    },
    plan: { kind: 'election', to: 'db1' },
    acts: true,
  },
  {
    situation: 'two_writable_hosts',
    snapshot: () => {
      const { snapshot, sim } = healthy();
      sim.host('db2').readOnly = false;
      return observe(snapshot, sim);
    },
  },
  {
    situation: 'stray_writable_host',
    snapshot: () => {
      const { snapshot, sim } = healthy();
      sim.host('db3').readOnly = false;
      return observe(snapshot, sim);
    },
    host: 'db3',
  },
  {
    situation: 'writer_without_lease',
    snapshot: () => ({
      ...healthy().snapshot,
      conditions: new Map([['writer.no_lease', "db1's agent did not take the writer lease"]]),
    }),
    host: 'db1',
    blockers: ['refusal'],
  },
  {
    situation: 'ineligible_writer',
    snapshot: () => withHost(healthy().snapshot, 'db1', 'ADMIN_OFFLINE'),
    host: 'db1',
    plan: { kind: 'switchover', to: 'db2' },
    acts: true,
  },
  {
    situation: 'unproved_fence',
    snapshot: () => ({
      ...deadWriter().snapshot,
      fenceUnproved: { host: 'db1', at: NOW - 100, reason: 'read_only could not be read back' },
    }),
    host: 'db1',
  },
  {
    situation: 'lease_wait',
    snapshot: () => ({
      ...deadWriter().snapshot,
      leaseWait: { writer: 'db1', since: NOW - 1000, deadline: NOW + 3000, reason: 'waiting' },
    }),
    host: 'db1',
    blockers: ['lease_wait'],
    plan: { kind: 'failover', to: 'db2' },
  },
  {
    situation: 'operation_in_progress',
    snapshot: () => {
      const { snapshot } = healthy();
      return {
        ...snapshot,
        state: {
          ...snapshot.state,
          operation: {
            kind: 'switchover',
            role: 'writer',
            from: 'db1',
            to: 'db2',
            startedAt: NOW - 100,
            step: 'catching_up',
          },
        },
      };
    },
    host: 'db2',
  },
  {
    situation: 'host_down',
    snapshot: () => {
      const { snapshot, sim } = healthy();
      sim.host('db3').reachable = false;
      return withHost(observe(snapshot, sim), 'db3', 'HARD_OFFLINE');
    },
    host: 'db3',
  },
  {
    situation: 'broken_replica',
    snapshot: () => {
      const { snapshot, sim } = healthy();
      sim.host('db3').sqlRunning = false;
      return withHost(observe(snapshot, sim), 'db3', 'REPLICATION_FAIL');
    },
    host: 'db3',
  },
  {
    situation: 'lagging_replica',
    snapshot: () => {
      const { snapshot, sim } = healthy();
      sim.host('db3').lag = 42;
      return withHost(observe(snapshot, sim), 'db3', 'REPLICATION_DELAY');
    },
    host: 'db3',
  },
  {
    situation: 'stray_replica',
    snapshot: () => ({
      ...healthy().snapshot,
      conditions: new Map([['replica.follow:db3', 'replicates from db2, not from the writer db1']]),
    }),
    host: 'db3',
  },
  {
    situation: 'errant_transactions',
    snapshot: () => ({
      ...withHost(healthy().snapshot, 'db2', 'AWAITING_RECOVERY', {
        held: 'errant transactions: 0-2-5',
      }),
      errant: new Map([['db2', ['0-2-5']]]),
    }),
    host: 'db2',
  },
  {
    situation: 'held_candidate',
    snapshot: () => {
      const { snapshot } = deadWriter();
      // Back from an outage, waiting for set-online (auto_set_online did not let it in).
      return withHost(snapshot, 'db2', 'AWAITING_RECOVERY');
    },
    host: 'db2',
    blockers: ['held_candidate', 'no_candidate'],
    plan: { kind: 'failover' },
  },
  {
    situation: 'held_host',
    snapshot: () => withHost(healthy().snapshot, 'db3', 'AWAITING_RECOVERY', { held: 'flapping' }),
    host: 'db3',
  },
  {
    situation: 'vip_mismatch',
    snapshot: () => {
      const { snapshot } = healthy();
      return {
        ...snapshot,
        agents: new Map([
          ...snapshot.agents,
          ['db3', { answering: true, leaseLapsed: false, held: [] }],
        ]),
      };
    },
    host: 'db3',
  },
  {
    situation: 'role_unassigned',
    snapshot: () => ({
      ...healthy().snapshot,
      conditions: new Map([['unassigned:reader:127.0.1.103', 'no eligible host']]),
    }),
  },
  {
    situation: 'maintenance',
    snapshot: () => ({
      ...deadWriter().snapshot,
      maintenance: new Map([['db1', { endsAt: '2030-01-01T00:00:00.000Z', silence: 's1' }]]),
    }),
    host: 'db1',
    blockers: ['maintenance'],
  },
  {
    situation: 'manual_mode',
    snapshot: () => {
      const { snapshot } = deadWriter();
      return {
        ...snapshot,
        state: { ...snapshot.state, mode: 'manual' },
        disposition: { kind: 'defer', reason: 'manual mode: deferred, only operator commands act' },
      };
    },
    blockers: ['mode'],
    plan: { kind: 'failover', to: 'db2' },
  },
  {
    situation: 'passive_mode',
    snapshot: () => {
      const { snapshot } = deadWriter();
      return {
        ...snapshot,
        state: { ...snapshot.state, mode: 'passive' },
        disposition: { kind: 'plan', reason: 'passive mode' },
      };
    },
    blockers: ['mode'],
    plan: { kind: 'failover', to: 'db2' },
  },
  {
    situation: 'not_leader',
    snapshot: () => ({
      ...deadWriter().snapshot,
      disposition: { kind: 'plan', reason: 'not the leader (follower of m1)' },
    }),
    blockers: ['not_leader'],
    plan: { kind: 'failover', to: 'db2' },
  },
];

test('the table has a row for every situation the analysis can name', () => {
  const covered = new Set(rows.map((row) => row.situation));
  const missing = SITUATION_NAMES.filter((name) => !covered.has(name));
  assert.deepEqual(missing, [], `situations without a row: ${missing.join(', ')}`);
});

test('a healthy cluster has no situation, no plan, nothing blocking', () => {
  const analysis = analyze(healthy().snapshot);
  assert.deepEqual(analysis.situations, []);
  assert.equal(analysis.plan, undefined);
  assert.deepEqual(analysis.blockers, []);
  assert.equal(analysis.writer, 'db1');
});

for (const row of rows) {
  test(`situation ${row.situation}`, () => {
    const analysis = analyze(row.snapshot());
    const names = analysis.situations.map((situation) => situation.name);
    const found = analysis.situations.find((situation) => situation.name === row.situation);
    assert.ok(found, `expected ${row.situation}, got ${names.join(', ') || 'none'}`);
    if (row.host) assert.equal(found.host, row.host);
    assert.ok(found.summary.length > 0);
    for (const kind of row.blockers ?? [])
      assert.ok(
        analysis.blockers.some((blocker) => blocker.kind === kind),
        `expected blocker ${kind}, got ${JSON.stringify(analysis.blockers)}`,
      );
    if (row.blockers?.length) assert.equal(analysis.acts, false);
    if (row.plan) {
      assert.equal(analysis.plan?.kind, row.plan.kind);
      assert.equal(analysis.plan?.to, row.plan.to);
    }
    if (row.acts !== undefined)
      assert.equal(analysis.acts, row.acts, JSON.stringify(analysis.blockers));
    // why HOST keeps what is about the host.
    if (row.host) {
      const narrowed = analyze(row.snapshot(), { host: row.host });
      assert.ok(narrowed.situations.some((situation) => situation.name === row.situation));
      assert.ok(narrowed.situations.every((situation) => situation.host === row.host));
    }
  });
}

test('a dead writer whose only candidate has errant transactions: the errant host is named', () => {
  const { snapshot } = deadWriter();
  const analysis = analyze({
    ...withHost(snapshot, 'db2', 'AWAITING_RECOVERY', { held: 'errant transactions: 0-2-5' }),
    errant: new Map([['db2', ['0-2-5']]]),
  });
  assert.ok(analysis.blockers.some((b) => b.kind === 'errant_host' && b.host === 'db2'));
  assert.equal(analysis.acts, false);
});

test('failover.promote_held: a candidate held only for a restart is promoted, as the engine does', () => {
  const { snapshot } = deadWriter();
  const analysis = analyze(withHost(snapshot, 'db2', 'AWAITING_RECOVERY', { held: 'restarted' }));
  assert.equal(analysis.plan?.to, 'db2');
  assert.equal(analysis.acts, true, JSON.stringify(analysis.blockers));
  const strict = analyze({
    ...withHost(snapshot, 'db2', 'AWAITING_RECOVERY', { held: 'restarted' }),
    config: testConfig({ failover: { promote_held: false } }),
  });
  assert.equal(strict.plan?.to, undefined);
  assert.ok(strict.blockers.some((blocker) => blocker.kind === 'held_candidate'));
});

test('the failover plan names its steps in the order the engine runs them', () => {
  const analysis = analyze(deadWriter().snapshot);
  assert.deepEqual(
    analysis.plan?.steps.map((step) => step.step),
    [
      'stop_replica_io',
      'catch_up',
      'stop_replication',
      'wait_for_lease',
      'final_catch_up',
      'grant_lease',
      'promote',
      'route',
      'repoint',
    ],
  );
});

test('engine: the cycle sets switchyard_situation, and why shows the evidence the engine withheld on', async () => {
  const h = harness();
  await h.cycle();
  let text = await h.metrics.render();
  assert.match(text.body, /switchyard_situation\{situation="dead_writer",cluster="test"\} 0/);
  // db1 silent: not HARD_OFFLINE yet, the engine withholds the failover and why says the same.
  h.sim.host('db1').reachable = false;
  h.sim.host('db1').failure = 'silent';
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  const analysis = h.engine.analysis();
  assert.ok(analysis.situations.some((situation) => situation.name === 'unreachable_writer'));
  const withheld = h.engine.currentConditions()['failover.withheld'];
  assert.ok(withheld, 'the engine withheld the failover');
  assert.ok(
    analysis.blockers.some(
      (blocker) => blocker.kind === 'evidence_missing' && blocker.detail === withheld,
    ),
    JSON.stringify(analysis.blockers),
  );
  text = await h.metrics.render();
  assert.match(
    text.body,
    /switchyard_situation\{situation="unreachable_writer",cluster="test"\} 1/,
  );
});

test('engine: in manual mode a dead writer is planned, not acted on, and why says the mode', async () => {
  const h = harness();
  await h.cycle();
  await h.engine.setMode('manual', 'test');
  h.sim.killHost('db1');
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(
    h.engine.snapshot().roles.writer?.['127.0.1.100'],
    'db1',
    'manual mode moved nothing',
  );
  const analysis = h.engine.analysis();
  assert.ok(analysis.situations.some((situation) => situation.name === 'dead_writer'));
  assert.ok(analysis.situations.some((situation) => situation.name === 'manual_mode'));
  assert.equal(analysis.plan?.kind, 'failover');
  assert.equal(analysis.plan?.to, 'db2');
  assert.equal(analysis.acts, false);
  assert.ok(analysis.blockers.some((blocker) => blocker.kind === 'mode'));
  // Back to active: the engine fails over, as why said it would.
  await h.engine.setMode('active', 'test');
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(h.engine.snapshot().roles.writer?.['127.0.1.100'], 'db2');
});

test('GET /analysis needs only the read scope', () => {
  assert.equal(scopeFor('GET', '/analysis'), 'read');
});

test('why prints the situations, the plan step by step, and what stops it', () => {
  const { snapshot } = deadWriter();
  const text = renderAnalysis(
    analyze({
      ...snapshot,
      state: { ...snapshot.state, mode: 'manual' },
      disposition: { kind: 'defer', reason: 'manual mode: deferred, only operator commands act' },
    }),
  );
  assert.match(text, /^cluster test: mode manual; writer db1/);
  assert.match(text, /dead_writer: writer db1 is dead/);
  assert.match(text, /plan: failover of writer db1 -> db2/);
  assert.match(text, / {2}\d+\. promote \(db2\): db2: read_only=OFF/);
  assert.match(text, /the engine does not run this plan now/);
  assert.match(text, /what stops it:\n {2}mode: manual mode: deferred/);
  assert.match(renderAnalysis(analyze(healthy().snapshot)), /situations: none \(healthy\)/);
});

test('a hung writer that everyone lost is dead by evidence and named hung too', () => {
  const { snapshot, sim } = healthy();
  sim.host('db1').reachable = false;
  sim.host('db1').failure = 'silent';
  const failed = { ok: false, refused: false, startedAt: NOW - 500, detail: 'no greeting' };
  const analysis = analyze(
    withHost(
      {
        ...observe(snapshot, sim),
        lostSince: new Map([['db1', NOW - 3000]]),
        observerViews: new Map([
          ['db2', { hasAgent: true, probe: failed }],
          ['db3', { hasAgent: true, probe: failed }],
        ]),
      },
      'db1',
      'HARD_OFFLINE',
    ),
  );
  const names = analysis.situations.map((situation) => situation.name);
  assert.ok(names.includes('dead_writer') && names.includes('hung_writer'), names.join(', '));
  assert.equal(analysis.plan?.kind, 'failover');
});
