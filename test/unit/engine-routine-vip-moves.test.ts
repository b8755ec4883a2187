import assert from 'node:assert/strict';
import { test } from 'node:test';
import { holderOf } from '../../src/engine/roles.js';
import { AgentExchange } from '../../src/actuator/agent-exchange.js';
import { silentLogger } from '../../src/log.js';
import { SimCluster, clusterState, harness, testConfig } from './engine-fakes.js';
import { SimAgents } from './sim-agents.js';

const READERS = ['127.0.1.101', '127.0.1.102', '127.0.1.103'];
const healthy = { db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' } as const;

test("a cycle's reader moves call a failing agent once, briefly: later moves onto that host in the cycle are not made, the IPs are left unassigned, and the next cycle moves them", async () => {
  const config = testConfig();
  const h = harness({ config });
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  const before = h.engine.snapshot().roles.reader ?? {};
  const moving = READERS.filter((ip) => before[ip] !== 'db1');
  assert.equal(moving.length, 2, `two reader IPs away from db1: ${JSON.stringify(before)}`);

  // db2 and db3 lose eligibility at once: db1 is the only place for their reader IPs, and its
  // agent fails (a link just cut answers nothing).
  h.sim.failOn.add('addVip:db1');
  h.sim.vipBounds.length = 0;
  const state = await h.cycle({ db1: 'ONLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' });

  const adds = h.sim.vipBounds.filter((call) => call.key.startsWith('addVip:db1:'));
  assert.equal(adds.length, 1, `one call to db1's agent: ${JSON.stringify(h.sim.vipBounds)}`);
  assert.deepEqual(adds[0]?.bound, {
    timeoutMs: Math.min(config.actuator.agent_timeout, Math.max(1000, config.monitor.interval)),
    retries: 0,
  });
  for (const call of h.sim.vipBounds)
    assert.equal(call.bound?.retries, 0, `every routine VIP call is tried once: ${call.key}`);
  for (const ip of moving) assert.equal(state.roles.reader?.[ip], null, `${ip} left unassigned`);
  const events = h.events();
  assert.ok(events.includes('after:vip.add:db1:failed'), events.join('\n'));
  assert.equal(
    events.filter((event) => event === 'note:vip.add_deferred:db1').length,
    1,
    'the second IP is not sent to the agent that just failed',
  );
  assert.match(
    h.journal.entries.find((entry) => entry.event === 'vip.add_deferred')?.reason ?? '',
    /whose agent failed a VIP call a moment ago: left unassigned/,
  );

  h.sim.failOn.clear();
  const next = await h.cycle({ db1: 'ONLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' });
  for (const ip of moving) {
    assert.equal(next.roles.reader?.[ip], 'db1', `${ip} on db1 the next cycle`);
    assert.ok(h.sim.host('db1').vips.has(ip));
  }
});

test("a failover's and an operator's VIP calls keep the agent client's retries; the cycle's reader moves around them are routine", async () => {
  const h = harness();
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  h.sim.killHost('db1');
  h.sim.vipBounds.length = 0;
  const state = await h.cycle({ db1: 'HARD_OFFLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(holderOf(state.roles, 'writer'), 'db2');
  const writerAdd = h.sim.vipBounds.find((call) => call.key === 'addVip:db2:127.0.1.100');
  assert.ok(writerAdd, JSON.stringify(h.sim.vipBounds));
  assert.equal(writerAdd.bound, undefined, "the failover's own step: actuator.agent_retries");
  const readerAdds = h.sim.vipBounds.filter((call) =>
    /^addVip:.*:127\.0\.1\.10[1-3]$/.test(call.key),
  );
  assert.ok(readerAdds.length > 0, `db1's reader IP moved: ${JSON.stringify(h.sim.vipBounds)}`);
  for (const call of readerAdds) assert.equal(call.bound?.retries, 0, call.key);

  // Two reader IPs for three hosts: one host holds none, and the operator gives it one.
  const config = testConfig();
  const roles = {
    ...config.roles,
    reader: {
      ...(config.roles.reader as NonNullable<typeof config.roles.reader>),
      ips: READERS.slice(0, 2),
    },
  };
  const o = harness({ config: { ...config, roles } });
  await o.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  const readers = o.engine.snapshot().roles.reader ?? {};
  const holders = READERS.slice(0, 2).map((ip) => readers[ip]);
  const free = ['db1', 'db2', 'db3'].find((host) => !holders.includes(host)) as string;
  o.sim.vipBounds.length = 0;
  const moved = await o.engine.moveRole('reader', free, { force: false });
  assert.ok(moved.ok, moved.detail);
  assert.ok(o.sim.vipBounds.length > 0, 'the operator move called an agent');
  for (const call of o.sim.vipBounds) assert.equal(call.bound, undefined, call.key);
});

test('an IP that would go to a host whose agent does not answer the exchange stays unassigned without a call, journaled once while it lasts, and goes there once the agent answers', async () => {
  const config = testConfig();
  const sim = SimCluster.standard(config);
  sim.host('db3').agentUp = false;
  const transport = new SimAgents(sim, () => 'db1');
  transport.slowSync.add('db3');
  const agents = new AgentExchange({ transport, timeoutMs: 500, log: silentLogger });
  const h = harness({
    config,
    sim,
    agents,
    state: clusterState(healthy, {
      writer: { '127.0.1.100': 'db1' },
      reader: { '127.0.1.101': 'db1', '127.0.1.102': 'db2', '127.0.1.103': null },
    }),
  });
  const cycle = async () => {
    const state = await h.cycle(healthy);
    await agents.settled();
    return state;
  };
  const adds = () => sim.calls.filter((call) => call === 'addVip:db3:127.0.1.103').length;
  // Nothing is known of db3's agent yet: the add is tried, once, and fails.
  await cycle();
  assert.equal(adds(), 1);
  const moves = () =>
    h.journal.entries.filter(
      (entry) => entry.event === 'role.move' && JSON.stringify(entry).includes('127.0.1.103'),
    ).length;
  const movesBefore = moves();
  for (let i = 0; i < 4; i++) {
    const state = await cycle();
    assert.equal(state.roles.reader?.['127.0.1.103'], null);
  }
  assert.equal(adds(), 1, 'no call to an agent the exchange finds silent');
  assert.equal(moves(), movesBefore, 'no role.move every cycle');
  const deferred = h.journal.entries.filter((entry) => entry.event === 'vip.add_deferred');
  assert.equal(deferred.length, 1, 'journaled once while it lasts');
  assert.match(deferred[0]?.reason ?? '', /would go to db3, whose agent does not answer/);
  assert.match(
    h.engine.currentConditions()['vip.add_deferred:reader:127.0.1.103'] ?? '',
    /^it would go to db3, whose agent does not answer$/,
    'the status names it while it lasts',
  );
  const shown = h.engine.analysis().situations.find((item) => item.name === 'role_unassigned');
  assert.equal(
    shown?.summary,
    'reader IP 127.0.1.103 is unassigned: it would go to db3, whose agent does not answer',
    'why shows it',
  );

  sim.host('db3').agentUp = true;
  transport.slowSync.delete('db3');
  await cycle();
  const state = await cycle();
  assert.equal(state.roles.reader?.['127.0.1.103'], 'db3');
  assert.ok(sim.host('db3').vips.has('127.0.1.103'));
});
