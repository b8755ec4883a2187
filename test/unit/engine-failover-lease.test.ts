/**
 * The lease step of a failover with the hosts' agents (a fake transport over the simulated
 * cluster): kill -9 of the writer's mariadbd while its agent lives on and keeps its lease through
 * the other agents, and one exchange with that agent timed out just then; the writer lost while
 * its agent is not running at all (stopped for an upgrade).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentExchange } from '../../src/actuator/agent-exchange.js';
import type { ReleaseAnswer } from '../../src/domain/agent-exchange.js';
import { silentLogger } from '../../src/log.js';
import { holderOf } from '../../src/engine/roles.js';
import { SimCluster, harness, testConfig } from './engine-fakes.js';
import { SimAgents } from './sim-agents.js';

function agentHarness() {
  // A short lease keeps the test quick; the gate's bound is 2 x (lease + margin of 1 s) = 3 s.
  const config = testConfig({ lease: '500ms', monitor: { interval: '200ms' } });
  const sim = SimCluster.standard(config);
  let writer = 'db1';
  const transport = new SimAgents(sim, () => writer);
  const agents = new AgentExchange({ transport, timeoutMs: 500, log: silentLogger });
  const h = harness({ config, sim, agents });
  const cycle = async (hosts: Parameters<typeof h.cycle>[0]) => {
    const state = await h.cycle(hosts);
    writer = holderOf(state.roles, 'writer') ?? writer;
    await agents.settled();
    return state;
  };
  return { h, sim, transport, agents, cycle };
}

test("kill -9 of the writer's mariadbd, its agent alive, one exchange and one fence request timed out: the request is sent again and the failover completes, never before the fence was proved", async () => {
  const { h, sim, transport, agents, cycle } = agentHarness();
  await cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.ok(agents.leaseConfirmedAt('db1') !== undefined, "db1's agent confirmed its lease");

  // The manager's exchange with db1's agent times out (a loaded machine), just as mariadbd dies.
  transport.slowSync.add('db1');
  await cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  transport.slowSync.delete('db1');
  assert.equal(agents.report('db1')?.error !== undefined, true, 'the exchange with db1 failed');
  sim.killHost('db1');
  sim.host('db1').agentUp = true;
  // And the first fence request of the failover times out too.
  transport.releaseTimeouts = 1;

  const started = Date.now();
  const state = await cycle({
    db1: 'HARD_OFFLINE',
    db2: 'REPLICATION_FAIL',
    db3: 'REPLICATION_FAIL',
  });
  const took = Date.now() - started;

  const events = h.events();
  assert.equal(holderOf(state.roles, 'writer'), 'db2', events.join('\n'));
  assert.ok(!events.includes('refused:failover.refused:db2'), events.join('\n'));
  assert.deepEqual(h.sim.violations, []);
  // Promoted only after db1's agent proved its fence: its lease never lapses by itself here.
  const proved = sim.calls.lastIndexOf('releaseLease:db1');
  assert.ok(
    proved >= 0 && proved < sim.calls.indexOf('setReadOnly:db2:false'),
    sim.calls.join(' '),
  );
  assert.ok(transport.releases.some((release) => release.answered));
  assert.ok(events.includes('note:failover.lease_released:db1'), events.join('\n'));
  assert.ok(took < 2500, `the failover took ${took} ms`);
  // Its agent proved no mariadbd running: whatever answers on db1 next is a new server, held as
  // restarted however soon it comes back (src/monitor/restart.ts).
  const goneAt = state.hosts.db1?.processGoneAt;
  assert.ok(goneAt !== undefined && goneAt >= started && goneAt <= Date.now(), String(goneAt));
});

test("the old writer's agent goes silent for good after its lease was confirmed: the failover waits its lease out from the last contact, then completes", async () => {
  const { h, sim, transport, cycle } = agentHarness();
  await cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  sim.killHost('db1');
  transport.alive.delete('db1');
  const lostAt = Date.now();
  await cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  const state = await cycle({
    db1: 'HARD_OFFLINE',
    db2: 'REPLICATION_FAIL',
    db3: 'REPLICATION_FAIL',
  });
  const promotedAt = Date.now();
  const events = h.events();
  assert.equal(holderOf(state.roles, 'writer'), 'db2', events.join('\n'));
  assert.ok(events.includes('decision:failover.lease_wait:db1'), events.join('\n'));
  // Last contact no later than lostAt; lease 500 ms + margin 1000 ms.
  assert.ok(
    promotedAt - lostAt >= 1500,
    `promoted ${promotedAt - lostAt} ms after the last contact`,
  );
  assert.deepEqual(h.sim.violations, []);
});

test("the old writer's agent still reaches the other agents but never answers the manager: its lease is not taken as lapsed from contacts reported before the failover, the failover is refused at the gate's bound", async () => {
  const { h, sim, transport, cycle } = agentHarness();
  await cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  transport.slowSync.add('db1');
  transport.releaseTimeouts = Number.POSITIVE_INFINITY;
  sim.killHost('db1');
  sim.host('db1').agentUp = true;
  const started = Date.now();
  const state = await cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  const events = h.events();
  assert.equal(holderOf(state.roles, 'writer'), 'db1', events.join('\n'));
  assert.deepEqual(sim.writable(), []);
  assert.ok(!sim.calls.includes('setReadOnly:db2:false'), sim.calls.join(' '));
  const refusal = h.journal.entries.find((entry) => entry.event === 'failover.refused');
  assert.match(refusal?.reason ?? '', /kept being reached by other hosts/);
  assert.match(refusal?.reason ?? '', /fence request\(s\) got no answer/);
  // Bound: 2 x (lease 500 ms + margin 1000 ms).
  assert.ok(Date.now() - started < 3000 + 1500, `held the engine ${Date.now() - started} ms`);
});

test("the writer's agent is not running (its port refuses: stopped for an upgrade) when the writer is lost: no promotion on a lease lapse nobody would act on; once the agent is back and proves the fence, the failover completes", async () => {
  const { h, sim, transport, agents, cycle } = agentHarness();
  await cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.ok(agents.leaseConfirmedAt('db1') !== undefined, "db1's agent confirmed its lease");
  // db1's agent is stopped; the manager's next exchange is refused. Then db1 is lost (cut off,
  // or dead: the manager cannot tell, and no agent runs there to fence it).
  transport.stopped.add('db1');
  transport.alive.delete('db1');
  await cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(agents.leaseConfirmedAt('db1'), undefined, 'the stopped agent holds no lease');
  sim.killHost('db1');
  const state = await cycle({
    db1: 'HARD_OFFLINE',
    db2: 'REPLICATION_FAIL',
    db3: 'REPLICATION_FAIL',
  });
  const events = h.events();
  assert.equal(holderOf(state.roles, 'writer'), 'db1', events.join('\n'));
  assert.ok(!sim.calls.includes('setReadOnly:db2:false'), sim.calls.join(' '));
  assert.ok(!events.includes('decision:failover.lease_wait:db1'), events.join('\n'));
  assert.ok(events.includes('refused:failover.refused:db2'), events.join('\n'));
  assert.deepEqual(h.sim.violations, []);

  // The agent starts again (its server is dead): the fence request is answered and proved.
  transport.stopped.delete('db1');
  transport.alive.add('db1');
  const after = await cycle({
    db1: 'HARD_OFFLINE',
    db2: 'REPLICATION_FAIL',
    db3: 'REPLICATION_FAIL',
  });
  assert.equal(holderOf(after.roles, 'writer'), 'db2', h.events().join('\n'));
  assert.ok(h.events().includes('note:failover.lease_released:db1'), h.events().join('\n'));
  assert.deepEqual(h.sim.violations, []);
});

/**
 * The old writer fenced alive: its agent proved read_only with the server up (a host that came
 * back while the failover retried, a hang that ended), and that server holds transactions db2
 * never received (acknowledged just before a cut). db2 could have had them: it gets them first.
 */
function fencedAliveAhead(answer: Partial<ReleaseAnswer> = {}) {
  const setup = agentHarness();
  const { sim, transport } = setup;
  transport.releaseAnswer = () => ({
    fenced: true,
    how: 'read_only',
    detail: 'read_only=ON read back',
    position: '0-1-150',
    ...answer,
  });
  return {
    ...setup,
    async failOver() {
      await setup.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
      sim.killHost('db1');
      // What db1 wrote and acknowledged that never reached db2 (applied) nor db3.
      sim.host('db1').applied = '0-1-150';
      sim.host('db1').agentUp = true;
      return setup.cycle({ db1: 'HARD_OFFLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' });
    },
  };
}

test('the old writer fenced alive with transactions the candidate lacks: the candidate replicates them from it before its promotion', async () => {
  const { h, sim, failOver } = fencedAliveAhead();
  const state = await failOver();
  const events = h.events();
  assert.equal(holderOf(state.roles, 'writer'), 'db2', events.join('\n'));
  assert.ok(events.includes('decision:failover.final_catch_up:db2'), events.join('\n'));
  const calls = sim.calls;
  const repoint = calls.indexOf('repoint:db2:db1');
  const caughtUp = calls.indexOf('waitForGtid:db2:0-1-150');
  const promoted = calls.indexOf('setReadOnly:db2:false');
  assert.ok(repoint >= 0 && repoint < caughtUp && caughtUp < promoted, calls.join(' '));
  assert.ok(calls.lastIndexOf('stopReplication:db2') > caughtUp, calls.join(' '));
  assert.equal(sim.host('db2').applied, '0-1-150');
  const decision = h.journal.entries.find((entry) => entry.event === 'failover.final_catch_up');
  assert.match(decision?.reason ?? '', /50 transaction\(s\) db2 lacks/);
  assert.deepEqual(sim.violations, []);
});

test('an agent of the previous protocol proves the fence without a position: the manager reads it, and the candidate still catches up', async () => {
  const { h, sim, failOver } = fencedAliveAhead({ position: undefined });
  const state = await failOver();
  const events = h.events();
  assert.equal(holderOf(state.roles, 'writer'), 'db2', events.join('\n'));
  assert.ok(sim.calls.includes('waitForGtid:db2:0-1-150'), sim.calls.join(' '));
});

test("the candidate cannot get the fenced writer's last transactions: the failover is refused, the old writer stays fenced, and the candidate replicates again", async () => {
  const { h, sim, failOver } = fencedAliveAhead();
  sim.waitAnswer = (host, position) => !(host === 'db2' && position === '0-1-150');
  const state = await failOver();
  const events = h.events();
  assert.equal(holderOf(state.roles, 'writer'), 'db1', events.join('\n'));
  assert.ok(!sim.calls.includes('setReadOnly:db2:false'), sim.calls.join(' '));
  const refusal = h.journal.entries.find((entry) => entry.event === 'failover.refused');
  assert.match(refusal?.reason ?? '', /lacks writes it could have had/);
  assert.ok(sim.calls.includes('resumeReplication:db2'), sim.calls.join(' '));
  assert.equal(sim.host('db2').sqlRunning, true);
  assert.deepEqual(sim.writable(), []);
});

test('a failover refused at the lease leaves the candidate replicating from the old writer, not stopped', async () => {
  const { h, sim, transport, cycle } = agentHarness();
  await cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  transport.slowSync.add('db1');
  transport.releaseTimeouts = Number.POSITIVE_INFINITY;
  sim.killHost('db1');
  sim.host('db1').agentUp = true;
  const state = await cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  assert.equal(holderOf(state.roles, 'writer'), 'db1', h.events().join('\n'));
  const stopped = sim.calls.indexOf('stopReplication:db2');
  assert.ok(
    stopped >= 0 && sim.calls.indexOf('resumeReplication:db2') > stopped,
    sim.calls.join(' '),
  );
  assert.equal(sim.host('db2').sqlRunning, true);
});
