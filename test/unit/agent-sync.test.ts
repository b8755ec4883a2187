/**
 * The agent's side of the per-cycle exchange, against an in-memory interface: declarative VIP
 * convergence, ordering by sequence, refusals that change nothing, and the writer's lease.
 */
import assert from 'node:assert/strict';
import { MemoryVipDriver, serveAgent } from '../support/memory-agent.js';
import { test } from 'node:test';
import { validateAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import { LeaseKeeper } from '../../src/agent/lease.js';
import { createAgentApp } from '../../src/agent/server.js';
import type { ProbeResult } from '../../src/agent/writer-probe.js';
import { silentLogger } from '../../src/log.js';

const TOKEN = 'sync-test-token';
const VIPS = ['10.9.9.100', '10.9.9.101', '10.9.9.102'];

async function agent(
  t: import('node:test').TestContext,
  options: { probe?: (target: { host: string }) => Promise<ProbeResult> } = {},
) {
  const { config } = validateAgentConfig(
    {
      listen: '127.0.0.1:0',
      auth: { token_env: 'UNUSED_TOKEN' },
      vip: { interface: 'eth0', ips: VIPS },
    },
    '/tmp/agent.yml',
  );
  const driver = new MemoryVipDriver([{ ip: '10.9.9.11', prefix: 24 }]);
  const app = createAgentApp({
    config: config as AgentConfig,
    driver,
    getToken: () => TOKEN,
    logger: silentLogger,
    probe: options.probe
      ? (target) => (options.probe as (target: { host: string }) => Promise<ProbeResult>)(target)
      : async (target) => ({
          target: target.host,
          ok: true,
          refused: false,
          detail: 'greeting',
          startedAt: Date.now(),
          finishedAt: Date.now(),
        }),
    ping: async () => {
      throw new Error('unreachable');
    },
  });
  const url = await serveAgent(t, app);
  const sync = async (body: Record<string, unknown>) => {
    const response = await fetch(`${url}/api/v1/sync`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ host: 'db1', interval_ms: 200, prefix: 24, ...body }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  return { driver, sync, url };
}

test('sync converges to the whole desired set and is idempotent', async (t) => {
  const { driver, sync } = await agent(t);
  driver.held.push({ ip: '10.9.9.102', prefix: 24 }); // a stray VIP from before an isolation
  const first = await sync({ seq: 1, vips: ['10.9.9.100', '10.9.9.101'] });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.deepEqual(first.body.added, ['10.9.9.100', '10.9.9.101']);
  assert.deepEqual(first.body.removed, ['10.9.9.102']);
  assert.deepEqual((first.body.held as string[]).sort(), ['10.9.9.100', '10.9.9.101']);
  assert.ok(
    driver.held.some((address) => address.ip === '10.9.9.11'),
    "addresses outside the agent's VIP list are never touched",
  );
  const calls = driver.calls.length;
  const again = await sync({ seq: 2, vips: ['10.9.9.100', '10.9.9.101'] });
  assert.deepEqual(again.body.added, []);
  assert.deepEqual(again.body.removed, []);
  assert.equal(driver.calls.length, calls, 'the same message twice changes nothing');
});

test('a stale sequence is refused with 409 and changes nothing; a foreign IP is refused whole', async (t) => {
  const { driver, sync } = await agent(t);
  await sync({ seq: 10, vips: ['10.9.9.100'] });
  const stale = await sync({ seq: 9, vips: [] });
  assert.equal(stale.status, 409);
  assert.equal(stale.body.error, 'stale');
  assert.ok(driver.held.some((address) => address.ip === '10.9.9.100'));
  const foreign = await sync({ seq: 11, vips: ['10.9.9.100', '192.0.2.7'] });
  assert.equal(foreign.status, 403);
  assert.match(String(foreign.body.detail), /192\.0\.2\.7 not among this agent's VIPs/);
  const malformed = await sync({ seq: 12, vips: 'all' });
  assert.equal(malformed.status, 400);
  assert.ok(driver.held.some((address) => address.ip === '10.9.9.100'));
});

test('the agent probes the writer it is told about and reports the result with its age', async (t) => {
  const probed: string[] = [];
  const { sync } = await agent(t, {
    probe: async (target) => {
      probed.push(target.host);
      return {
        target: target.host,
        ok: false,
        refused: true,
        detail: 'ECONNREFUSED',
        startedAt: Date.now(),
        finishedAt: Date.now(),
      };
    },
  });
  await sync({
    seq: 1,
    vips: [],
    writer: { host: 'db2', address: '127.0.0.1', port: 1, timeout_ms: 200 },
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const answer = await sync({
    seq: 2,
    vips: [],
    writer: { host: 'db2', address: '127.0.0.1', port: 1, timeout_ms: 200 },
  });
  const probe = answer.body.probe as {
    target: string;
    ok: boolean;
    refused: boolean;
    started_ago_ms: number;
  };
  assert.equal(probe.target, 'db2');
  assert.equal(probe.ok, false);
  assert.equal(probe.refused, true);
  assert.ok(probe.started_ago_ms >= 0);
  assert.ok(probed.includes('db2'));
});

test('lease: a writer that reaches no majority for the lease fences itself once, and withholds the writer VIP', async (t) => {
  const { driver, sync } = await agent(t);
  const lease = {
    duration_ms: 500,
    voters: [
      { host: 'db2', url: 'http://127.0.0.1:9' },
      { host: 'db3', url: 'http://127.0.0.1:9' },
    ],
    managers: 1,
    writer_vips: ['10.9.9.100'],
  };
  const granted = await sync({ seq: 1, vips: ['10.9.9.100', '10.9.9.101'], lease });
  assert.deepEqual(granted.body.lease, {
    holding: true,
    lapsed: false,
    fenced: false,
    quorum_ago_ms: (granted.body.lease as { quorum_ago_ms: number }).quorum_ago_ms,
    reached: [],
  });
  // Only the manager and itself: 2 of 4 voters, no majority. The lease runs out and the VIP goes.
  await new Promise((resolve) => setTimeout(resolve, 900));
  assert.ok(
    !driver.held.some((address) => address.ip === '10.9.9.100'),
    'writer VIP removed by the lease',
  );
  assert.ok(
    driver.held.some((address) => address.ip === '10.9.9.101'),
    'reader VIP kept',
  );
  const after = await sync({ seq: 2, vips: ['10.9.9.100', '10.9.9.101'], lease });
  assert.deepEqual(after.body.withheld, ['10.9.9.100']);
  assert.equal((after.body.lease as { lapsed: boolean }).lapsed, true);
  assert.ok(!driver.held.some((address) => address.ip === '10.9.9.100'));
});

test('lease quorum: losing the manager alone or one other host alone keeps it; both lapse it', async () => {
  let now = 1_000_000;
  const fenced: string[] = [];
  const reachable = new Set(['db2', 'db3']);
  const keeper = new LeaseKeeper({
    log: silentLogger,
    now: () => now,
    ping: async (url) => {
      if (!reachable.has(url)) throw new Error('unreachable');
    },
    fence: async (_vips, reason) => {
      fenced.push(reason);
      return { proved: true, how: 'read_only' as const, detail: 'fenced' };
    },
  });
  const settings = {
    self: 'db1',
    durationMs: 3000,
    intervalMs: 1000,
    voters: [
      { host: 'db2', url: 'db2' },
      { host: 'db3', url: 'db3' },
    ],
    managers: 1,
    writerVips: ['10.0.0.100'],
  };
  keeper.configure(settings);
  const tick = async () => {
    await (keeper as unknown as { tick(): Promise<void> }).tick();
  };
  keeper.stop();
  await tick();
  // Manager gone for 10 s: self + db2 + db3 = 3 of 4.
  for (let step = 0; step < 10; step++) {
    now += 1000;
    await tick();
  }
  assert.equal(keeper.status().holding, true);
  // Manager back, db3 gone: self + manager + db2.
  reachable.delete('db3');
  for (let step = 0; step < 10; step++) {
    now += 1000;
    keeper.managerContact();
    await tick();
  }
  assert.equal(keeper.status().holding, true);
  assert.deepEqual(fenced, []);
  // Manager and db3 gone: 2 of 4.
  for (let step = 0; step < 5; step++) {
    now += 1000;
    await tick();
  }
  assert.equal(keeper.status().lapsed, true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(fenced.length, 1);
  assert.match(fenced[0] ?? '', /no majority of 4 voters reached for 3000 ms \(reached: db2\)/);
  keeper.stop();
});

test("lease: a voter counts from when the ping left, so a slow reply never stretches the lease past the manager's count", async () => {
  let now = 1_000_000;
  const fenced: string[] = [];
  // Every reply takes 900 ms: the voters record the contact when the ping arrives, well before.
  const keeper = new LeaseKeeper({
    log: silentLogger,
    now: () => now,
    ping: async () => {
      now += 900;
    },
    fence: async (_vips, reason) => {
      fenced.push(reason);
      return { proved: true, how: 'read_only' as const, detail: 'fenced' };
    },
  });
  keeper.configure({
    self: 'db1',
    durationMs: 3000,
    intervalMs: 1000,
    voters: [
      { host: 'db2', url: 'db2' },
      { host: 'db3', url: 'db3' },
    ],
    managers: 1,
    writerVips: ['10.0.0.100'],
  });
  keeper.stop();
  const tick = () => (keeper as unknown as { tick(): Promise<void> }).tick();
  const sentAt = now;
  await tick(); // both pings left at sentAt; the replies came back 900 ms (and 1800 ms) later
  // The manager's last contact is already 2.7 s old; the other agents were reached at sentAt.
  now = sentAt + 3001;
  (keeper as unknown as { evaluate(): void }).evaluate();
  assert.equal(
    keeper.status().lapsed,
    true,
    'lapsed 3 s after the pings left, not after the replies',
  );
  keeper.stop();
});

test('fencing: after a newer leader term, every request of the older term is refused 409 stale and changes nothing', async (t) => {
  const { driver, sync, url } = await agent(t);
  const { TermSequence, nextTerm } = await import('../../src/domain/fencing.js');
  const oldTerm = nextTerm(0);
  const oldLeader = new TermSequence();
  const newLeader = new TermSequence();
  for (let i = 0; i < 5000; i++) oldLeader.next(oldTerm); // the old leader sent many requests
  const first = await sync({ seq: newLeader.next(oldTerm + 1), vips: ['10.9.9.101'] });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const calls = driver.calls.length;
  // The old leader wakes up (SIGSTOP/GC pause) and sends its desired set and a lease: refused.
  const lease = { duration_ms: 500, voters: [], managers: 1, writer_vips: ['10.9.9.100'] };
  const stale = await sync({ seq: oldLeader.next(oldTerm), vips: ['10.9.9.100'], lease });
  assert.equal(stale.status, 409);
  assert.equal(stale.body.error, 'stale');
  assert.equal(driver.calls.length, calls, 'nothing changed on the interface');
  const add = await fetch(`${url}/api/v1/vips/add`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ip: '10.9.9.100', interface: 'eth0', seq: oldLeader.next(oldTerm) }),
  });
  assert.equal(add.status, 409);
  assert.ok(!driver.held.some((address) => address.ip === '10.9.9.100'));
  // The stale request did not configure a lease either: the newer leader's next answer has none.
  const next = await sync({ seq: newLeader.next(oldTerm + 1), vips: ['10.9.9.101'] });
  assert.equal(next.status, 200);
  assert.equal(next.body.lease, undefined);
});
