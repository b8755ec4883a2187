/**
 * Invariant 4 with agents as observers: a silent loss is seen in seconds from the other hosts'
 * side; a manager-only cut, or one replica cut off, never makes a failover; a host whose agent is
 * down cannot be asked and the remaining observers decide. Plus the lease gate's two paths.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writerDeathEvidence, type ObserverView } from '../../src/engine/evidence.js';
import { awaitLeaseLapse } from '../../src/engine/lease-gate.js';
import { SimCluster, clusterState, testConfig } from './engine-fakes.js';

const config = testConfig();
const LOST = 1_000_000;

function setup(options: { silent?: boolean } = {}) {
  const sim = SimCluster.standard(config);
  sim.host('db1').reachable = false;
  sim.host('db1').failure = options.silent === false ? 'refused' : 'silent';
  const observations = new Map(sim.observe(LOST).map((obs) => [obs.host, obs]));
  const state = clusterState({ db1: 'HARD_OFFLINE', db2: 'ONLINE', db3: 'ONLINE' });
  return { sim, observations, state };
}

const probe = (ok: boolean, startedAt: number): ObserverView => ({
  hasAgent: true,
  probe: { ok, refused: false, startedAt, detail: ok ? 'greeting' : 'no greeting within 1000 ms' },
});

test('silent loss, IO threads still connected (slave_net_timeout 60 s), every agent probe fails: dead', () => {
  const { observations, state } = setup();
  const agents = new Map([
    ['db1', { hasAgent: true }],
    ['db2', probe(false, LOST + 500)],
    ['db3', probe(false, LOST + 600)],
  ]);
  const evidence = writerDeathEvidence('db1', {
    config,
    state,
    observations,
    agents,
    lostSince: LOST,
  });
  assert.equal(evidence.dead, true, evidence.reason);
  assert.match(evidence.reason, /db2 \(its agent's probe failed/);
});

test('manager-only cut: the agents still reach the writer after the manager lost it: no failover', () => {
  const { observations, state } = setup();
  const agents = new Map([
    ['db1', { hasAgent: true }],
    ['db2', probe(true, LOST + 500)],
    ['db3', probe(true, LOST + 400)],
  ]);
  const evidence = writerDeathEvidence('db1', {
    config,
    state,
    observations,
    agents,
    lostSince: LOST,
  });
  assert.equal(evidence.dead, false);
  assert.match(
    evidence.reason,
    /db2 \(its agent reached db1's port\), db3 \(its agent reached db1's port\) still see it/,
  );
});

test('a probe from before the loss neither agrees nor disagrees', () => {
  const { observations, state } = setup();
  const agents = new Map([
    ['db1', { hasAgent: true }],
    ['db2', probe(true, LOST - 200)],
    ['db3', probe(false, LOST + 300)],
  ]);
  const evidence = writerDeathEvidence('db1', {
    config,
    state,
    observations,
    agents,
    lostSince: LOST,
  });
  assert.equal(evidence.dead, true, evidence.reason);
  assert.match(evidence.reason, /not asked: db2/);
});

test('one replica cut off from a writer the others still reach: no failover', () => {
  const { observations, state } = setup();
  const agents = new Map([
    ['db1', { hasAgent: true }],
    ['db2', probe(true, LOST + 500)],
    ['db3', probe(false, LOST + 500)],
  ]);
  assert.equal(
    writerDeathEvidence('db1', { config, state, observations, agents, lostSince: LOST }).dead,
    false,
  );
});

test("a replica's agent is down while the writer dies silently: the remaining observers decide", () => {
  const { observations, state } = setup();
  const agents = new Map([
    ['db1', { hasAgent: true }],
    ['db2', probe(false, LOST + 500)],
    ['db3', { hasAgent: true }],
  ]);
  const evidence = writerDeathEvidence('db1', {
    config,
    state,
    observations,
    agents,
    lostSince: LOST,
  });
  assert.equal(evidence.dead, true, evidence.reason);
  assert.match(evidence.reason, /not asked: db3 \(its agent does not answer/);
});

test('nobody can be asked (every agent down, IO threads connected): no failover', () => {
  const { observations, state } = setup();
  const agents = new Map([
    ['db1', { hasAgent: true }],
    ['db2', { hasAgent: true }],
    ['db3', { hasAgent: true }],
  ]);
  const evidence = writerDeathEvidence('db1', {
    config,
    state,
    observations,
    agents,
    lostSince: LOST,
  });
  assert.equal(evidence.dead, false);
  assert.match(evidence.reason, /no other host could confirm it yet/);
});

test('lease gate: an answering old writer agent fences on request, nothing to wait for', async () => {
  const entries: string[] = [];
  const result = await awaitLeaseLapse({
    writer: 'db1',
    hasAgent: true,
    leaseMs: 3000,
    marginMs: 500,
    lastContact: () => 0,
    release: async () => ({ fenced: true, how: 'read_only', detail: 'read_only=ON read back' }),
    answering: true,
    now: () => 10,
    journal: (entry) => entries.push(entry.event),
  });
  assert.equal(result.ok, true);
  assert.deepEqual(entries, ['failover.lease_released']);
});

test('lease gate: an agent that answers but cannot prove its fence never counts: the lease is waited out', async () => {
  let now = 10_000;
  const entries: string[] = [];
  const result = await awaitLeaseLapse({
    writer: 'db1',
    hasAgent: true,
    leaseMs: 3000,
    marginMs: 1000,
    // The release itself was the last contact: the agent holds no lease from then on.
    lastContact: () => 10_000,
    confirmedAt: 9_000,
    answering: true,
    release: async () => ({
      fenced: false,
      how: 'unproved',
      detail: 'cannot log in as switchyard: Access denied; fence.escalate is none',
    }),
    now: () => now,
    journal: (entry) => entries.push(entry.event),
    sleep: async (ms) => {
      now += ms;
    },
  });
  assert.equal(result.ok, true);
  assert.ok(now >= 10_000 + 3000 + 1000, `promoted at ${now}, before the lease certainly lapsed`);
  assert.deepEqual(entries, ['failover.fence_unproved', 'failover.lease_wait']);
});

test('lease gate: an unproved fence from an agent that never confirmed a lease is refused, not trusted', async () => {
  const result = await awaitLeaseLapse({
    writer: 'db1',
    hasAgent: true,
    leaseMs: 3000,
    marginMs: 1000,
    lastContact: () => 0,
    answering: true,
    release: async () => ({ fenced: false, how: 'unproved', detail: 'no local mysql section' }),
    now: () => 10_000,
    journal: () => undefined,
  });
  assert.equal(result.ok, false);
  assert.match(result.detail, /fence was not proved: no local mysql section/);
});

test('lease gate: an unreachable old writer agent is waited out from its last contact, and a contact reported meanwhile moves the deadline', async () => {
  let now = 10_000;
  let lastContact = 9_000;
  const slept: number[] = [];
  const result = await awaitLeaseLapse({
    writer: 'db1',
    hasAgent: true,
    leaseMs: 3000,
    marginMs: 500,
    lastContact: () => lastContact,
    confirmedAt: 8_500,
    answering: true,
    release: async () => {
      throw new Error('no answer within 1000 ms');
    },
    now: () => now,
    journal: () => undefined,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
      if (now >= 11_000 && lastContact === 9_000) lastContact = 9_800; // db2 reports a later contact
    },
  });
  assert.equal(result.ok, true);
  assert.ok(now >= 9_800 + 3000 + 500, `promoted at ${now}, before the lease certainly lapsed`);
});

test('lease gate: an old writer agent that never confirmed a lease cannot be waited out: asked again for one lease, then refused', async () => {
  let now = 10_000;
  let requests = 0;
  const result = await awaitLeaseLapse({
    writer: 'db1',
    hasAgent: true,
    leaseMs: 3000,
    marginMs: 500,
    lastContact: () => 0,
    release: async () => {
      requests += 1;
      throw new Error('no answer');
    },
    answering: false,
    now: () => now,
    journal: () => undefined,
    sleep: async (ms) => {
      now += ms;
    },
  });
  assert.equal(result.ok, false);
  assert.match(result.detail, /holds no lease this manager knows of/);
  assert.match(result.detail, /fence request\(s\) got no answer \(last: no answer\)/);
  assert.ok(requests > 1, `asked ${requests} time(s)`);
  assert.ok(now <= 10_000 + 3000 + 100, `refused only at ${now}`);
});

test('lease gate: an agent that never confirmed a lease but answers a later request with a proved fence: promoted', async () => {
  let now = 10_000;
  let requests = 0;
  const entries: string[] = [];
  const result = await awaitLeaseLapse({
    writer: 'db1',
    hasAgent: true,
    leaseMs: 3000,
    marginMs: 500,
    lastContact: () => 0,
    release: async () => {
      requests += 1;
      if (requests === 1) throw new Error('no answer within 2500 ms');
      return { fenced: true, how: 'not_running', detail: 'mariadbd is not running' };
    },
    answering: true,
    now: () => now,
    journal: (entry) => entries.push(entry.event),
    sleep: async (ms) => {
      now += ms;
    },
  });
  assert.equal(result.ok, true, result.detail);
  assert.equal(requests, 2);
  assert.deepEqual(entries, ['failover.lease_released']);
});

test('lease gate: the old writer agent still renews its lease through the other agents and one request timed out: asked again, its proved fence ends the wait', async () => {
  // The agent is alive: the other agents report its pings every 300 ms, so its lease never lapses
  // and waiting alone would end at the gate's bound, refused.
  let now = 10_000;
  let requests = 0;
  const entries: string[] = [];
  const result = await awaitLeaseLapse({
    writer: 'db1',
    hasAgent: true,
    leaseMs: 3000,
    marginMs: 1000,
    lastContact: () => now - 300,
    confirmedAt: 9_900,
    // The per-cycle exchange timed out once, just before: not even asked at first.
    answering: false,
    release: async () => {
      requests += 1;
      if (requests === 1) throw new Error('no answer within 2500 ms');
      return { fenced: true, how: 'not_running', detail: 'mariadbd is not running' };
    },
    now: () => now,
    journal: (entry) => entries.push(entry.event),
    sleep: async (ms) => {
      now += ms;
    },
    releaseRetryMs: 500,
  });
  assert.equal(result.ok, true, result.detail);
  assert.equal(requests, 2);
  assert.ok(now <= 10_000 + 1000, `promoted only at ${now}`);
  assert.deepEqual(entries, ['failover.lease_wait', 'failover.lease_released']);
});

test('lease gate: an agent reached by others that never answers is refused at the bound, saying so', async () => {
  let now = 10_000;
  let requests = 0;
  const result = await awaitLeaseLapse({
    writer: 'db1',
    hasAgent: true,
    leaseMs: 3000,
    marginMs: 1000,
    lastContact: () => now - 300,
    confirmedAt: 9_900,
    answering: true,
    release: async () => {
      requests += 1;
      throw new Error('no answer within 2500 ms');
    },
    now: () => now,
    journal: () => undefined,
    sleep: async (ms) => {
      now += ms;
    },
  });
  assert.equal(result.ok, false);
  assert.match(result.detail, /kept being reached by other hosts/);
  assert.match(result.detail, /fence request\(s\) got no answer/);
  assert.ok(requests > 2, `asked ${requests} time(s)`);
});

test('lease gate: a fence request still in flight when the gate ended, answered unproved after the journal went away, rejects nothing', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    let now = 0;
    let answer: (value: { fenced: boolean; how: string; detail: string }) => void = () => {};
    let journalGone = false;
    let requests = 0;
    const result = await awaitLeaseLapse({
      writer: 'db1',
      hasAgent: true,
      leaseMs: 300,
      marginMs: 100,
      confirmedAt: 0,
      lastContact: () => 0,
      // The first request times out; the next is not answered while the gate waits, so the
      // lease is waited out with it still in flight.
      release: () => {
        requests += 1;
        if (requests === 1) return Promise.reject(new Error('no answer within 2500 ms'));
        return new Promise((resolve) => {
          answer = resolve;
        });
      },
      answering: true,
      releaseRetryMs: 50,
      now: () => now,
      sleep: async (ms) => {
        now += ms;
      },
      journal: () => {
        if (journalGone) throw new Error("ENOENT: no such file or directory, open 'journal.jsonl'");
      },
    });
    assert.equal(result.ok, true, result.detail);
    assert.ok(requests >= 2, `requests: ${requests}`);
    // The manager stopped and its state_dir was removed; then the agent answers, unproved.
    journalGone = true;
    answer({ fenced: false, how: 'unproved', detail: 'login failed' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
