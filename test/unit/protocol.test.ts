/**
 * The exchange protocol between manager and agents during a rolling upgrade: one version apart
 * works in both directions, anything further is refused whole, with the side to upgrade named.
 */
import assert from 'node:assert/strict';
import { MemoryVipDriver, serveAgent } from '../support/memory-agent.js';
import { test, type TestContext } from 'node:test';
import { AgentError } from '../../src/actuator/agent-client.js';
import { AgentExchange } from '../../src/actuator/agent-exchange.js';
import type { AgentTransport } from '../../src/actuator/types.js';
import { validateAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import { createAgentApp } from '../../src/agent/server.js';
import type { SyncAnswer, SyncRequest } from '../../src/domain/agent-exchange.js';
import {
  PROTOCOL_VERSION,
  peerProtocol,
  protocolMismatch,
  speakingProtocol,
} from '../../src/domain/protocol.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { MemoryJournal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log.js';
import { switchyardVersion } from '../../src/version.js';

test('negotiation: one version apart works both ways; further names the side that is behind', () => {
  assert.equal(protocolMismatch('agent', 2, 1), undefined);
  assert.equal(protocolMismatch('agent', 2, 3), undefined);
  assert.equal(protocolMismatch('manager', 2, 1), undefined);
  assert.equal(protocolMismatch('manager', 2, 3), undefined);
  assert.match(protocolMismatch('agent', 3, 1) ?? '', /upgrade the manager/);
  assert.match(protocolMismatch('agent', 1, 3) ?? '', /upgrade this agent/);
  assert.match(protocolMismatch('manager', 3, 1) ?? '', /upgrade the agent/);
  assert.match(protocolMismatch('manager', 1, 3) ?? '', /upgrade this manager/);
  assert.equal(peerProtocol(undefined), 1, 'a build from before the field speaks protocol 1');
  assert.equal(speakingProtocol({}), PROTOCOL_VERSION);
  assert.equal(speakingProtocol({ SWITCHYARD_PROTOCOL: '1' }), 1);
  assert.equal(speakingProtocol({ SWITCHYARD_PROTOCOL: 'old' }), PROTOCOL_VERSION);
});

const TOKEN = 'protocol-test-token';

async function agent(t: TestContext, protocol?: number) {
  const { config } = validateAgentConfig(
    {
      listen: '127.0.0.1:0',
      auth: { token_env: 'UNUSED_TOKEN' },
      vip: { interface: 'eth0', ips: ['10.9.9.100', '10.9.9.101'] },
    },
    '/tmp/agent.yml',
  );
  const driver = new MemoryVipDriver();
  const app = createAgentApp({
    config: config as AgentConfig,
    driver,
    getToken: () => TOKEN,
    logger: silentLogger,
    protocol,
    probe: async (target) => ({
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
  return { driver, sync };
}

test('the agent answers a manager one protocol apart either way and states its own', async (t) => {
  const { driver, sync } = await agent(t);
  const older = await sync({ seq: 1, vips: ['10.9.9.100'] }); // no field: a protocol-1 manager
  assert.equal(older.status, 200, JSON.stringify(older.body));
  assert.equal(older.body.protocol, PROTOCOL_VERSION);
  assert.equal(older.body.version, switchyardVersion());
  const newer = await sync({ protocol: PROTOCOL_VERSION + 1, seq: 2, vips: ['10.9.9.101'] });
  assert.equal(newer.status, 200, JSON.stringify(newer.body));
  assert.deepEqual(
    driver.held.map((address) => address.ip),
    ['10.9.9.101'],
  );
});

test('the agent refuses a manager two protocols ahead with 409 and changes nothing', async (t) => {
  const { driver, sync } = await agent(t);
  await sync({ seq: 1, vips: ['10.9.9.100'] });
  const refused = await sync({ protocol: PROTOCOL_VERSION + 2, seq: 2, vips: ['10.9.9.101'] });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error, 'protocol_mismatch');
  assert.match(String(refused.body.detail), /upgrade this agent/);
  assert.deepEqual(
    driver.held.map((address) => address.ip),
    ['10.9.9.100'],
    'no VIP moved on a refused exchange',
  );
  // Nor did the refused request take the sequence number: the next good one at seq 2 applies.
  const next = await sync({ protocol: PROTOCOL_VERSION, seq: 2, vips: [] });
  assert.equal(next.status, 200, JSON.stringify(next.body));
});

test('the agent refuses a manager two protocols behind and says to upgrade the manager', async (t) => {
  const { sync } = await agent(t, 3);
  const refused = await sync({ seq: 1, vips: ['10.9.9.100'] });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error, 'protocol_mismatch');
  assert.match(String(refused.body.detail), /upgrade the manager/);
});

test('an agent speaking the previous protocol (test setting) answers as an older build would', async (t) => {
  const { sync } = await agent(t, 1);
  const answer = await sync({ protocol: 2, seq: 1, vips: ['10.9.9.100'] });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.equal(answer.body.protocol, undefined);
  assert.equal(answer.body.version, undefined);
});

function answer(seq: number, extra: Partial<SyncAnswer> = {}): SyncAnswer {
  return {
    seq,
    held: ['10.9.9.100'],
    added: [],
    removed: [],
    withheld: [],
    contacts: {},
    ...extra,
  };
}

function manager(respond: (request: SyncRequest) => Promise<SyncAnswer>, protocol?: number) {
  const sent: SyncRequest[] = [];
  let seq = 0;
  const transport: AgentTransport = {
    nextSeq: () => ++seq,
    agentUrl: () => 'http://db1:9106',
    sync: async (_host, request) => {
      sent.push(request);
      return respond(request);
    },
    releaseLease: async () => ({ fenced: true, how: 'read_only', detail: '' }),
  };
  const journal = new MemoryJournal();
  const metrics = new SwitchyardMetrics('test', { processMetrics: false });
  const exchange = new AgentExchange({
    transport,
    timeoutMs: 1000,
    journal,
    log: silentLogger,
    metrics,
    protocol,
  });
  return { exchange, sent, journal, metrics };
}

const REQUEST = { host: 'db1', prefix: 24, vips: ['10.9.9.100'], interval_ms: 1000 };

async function mismatchMetric(metrics: SwitchyardMetrics): Promise<number | undefined> {
  const values = (await metrics.agentProtocolMismatch.get()).values;
  return values.find((value) => value.labels.host === 'db1')?.value;
}

test('the manager states its protocol and uses answers one version apart, older or newer', async () => {
  const { exchange, sent, metrics } = manager(async (request) =>
    answer(request.seq, request.seq === 1 ? {} : { protocol: PROTOCOL_VERSION + 1 }),
  );
  await exchange.exchangeNow('db1', REQUEST, 1000);
  assert.equal(sent[0]?.protocol, PROTOCOL_VERSION);
  assert.equal(exchange.report('db1')?.answer?.seq, 1, 'a protocol-1 answer is used');
  exchange.send('db1', REQUEST);
  await exchange.settled();
  assert.equal(exchange.report('db1')?.answer?.seq, 2, 'a protocol-3 answer is used');
  assert.equal(exchange.report('db1')?.error, undefined);
  assert.equal(await mismatchMetric(metrics), 0);
});

test('the manager does not use an answer two protocols apart: not answering, journaled once', async () => {
  let agentProtocol = PROTOCOL_VERSION + 2;
  const { exchange, journal, metrics } = manager(async (request) =>
    answer(request.seq, { protocol: agentProtocol, held: ['10.9.9.101'] }),
  );
  for (let cycle = 0; cycle < 3; cycle++) {
    exchange.send('db1', REQUEST);
    await exchange.settled();
  }
  const report = exchange.report('db1');
  assert.equal(report?.answer, undefined, 'nothing of the answer reaches the engine');
  assert.match(report?.error ?? '', /upgrade this manager/);
  assert.equal(exchange.fresh('db1', 60_000), false);
  await assert.rejects(exchange.exchangeNow('db1', REQUEST, 1000), /protocol/);
  assert.equal(await mismatchMetric(metrics), 1);
  assert.equal(
    journal.entries.filter((entry) => entry.event === 'agent.protocol_mismatch').length,
    1,
    'journaled once per change, not every cycle',
  );
  agentProtocol = PROTOCOL_VERSION; // the agent was upgraded
  exchange.send('db1', REQUEST);
  await exchange.settled();
  assert.deepEqual(exchange.report('db1')?.answer?.held, ['10.9.9.101']);
  assert.equal(await mismatchMetric(metrics), 0);
});

test("the agent's 409 protocol_mismatch counts as a mismatch on the manager too", async () => {
  const { exchange, journal, metrics } = manager(async () => {
    throw new AgentError('agent refused: upgrade the manager', 409, 'protocol_mismatch');
  }, 1);
  exchange.send('db1', REQUEST);
  await exchange.settled();
  assert.equal(await mismatchMetric(metrics), 1);
  assert.equal(exchange.report('db1')?.answer, undefined);
  assert.ok(journal.entries.some((entry) => entry.event === 'agent.protocol_mismatch'));
});

test('a manager speaking protocol 1 (test setting) sends what builds before the field sent', async () => {
  const { exchange, sent } = manager(async (request) => answer(request.seq), 1);
  const request = { ...REQUEST, roles: ['reader'], writer_role: 'writer', max_lag_ms: 10_000 };
  await exchange.exchangeNow('db1', request, 1000);
  exchange.send('db1', request);
  await exchange.settled();
  assert.equal(sent.length, 2);
  for (const body of sent)
    for (const key of ['protocol', 'roles', 'writer_role', 'max_lag_ms'])
      assert.equal(key in body, false, `${key} left out`);
  assert.deepEqual(sent[1]?.vips, REQUEST.vips);
});

test('the manager exports its build', async () => {
  const metrics = new SwitchyardMetrics('test', { processMetrics: false });
  const { body } = await metrics.render();
  assert.match(
    body,
    new RegExp(`switchyard_build_info\\{version="${switchyardVersion()}",cluster="test"\\} 1`),
  );
});

test('an agent built before the protocol field (rejects it as an unknown key) is spoken to without it', async () => {
  let rejected = 0;
  // Its strict schema knows none of the fields added since: the protocol, the health roles.
  const newer = ['protocol', 'roles', 'writer_role', 'max_lag_ms'];
  const { exchange, sent, journal } = manager(async (request) => {
    const unknown = newer.filter((key) => key in request);
    if (unknown.length > 0) {
      rejected++;
      throw new AgentError(
        `POST http://db1:9106/api/v1/sync: HTTP 400 malformed: unknown key(s) ${unknown.join(', ')}`,
        400,
        'malformed',
      );
    }
    return answer(request.seq);
  });
  const request = { ...REQUEST, roles: ['reader'], writer_role: 'writer', max_lag_ms: 10_000 };
  await exchange.exchangeNow('db1', request, 1000);
  assert.equal(exchange.report('db1')?.answer?.seq, 1, 'the first exchange already succeeds');
  for (let cycle = 0; cycle < 3; cycle++) {
    exchange.send('db1', request);
    await exchange.settled();
  }
  assert.equal(rejected, 1, 'the new fields are left out from then on');
  assert.equal(exchange.report('db1')?.error, undefined);
  for (const key of newer) assert.ok(!(key in (sent.at(-1) ?? {})), `${key} left out`);
  assert.equal(
    journal.entries.filter((entry) => entry.event.startsWith('agent.')).length,
    0,
    'not a failure',
  );
});

test('a malformed request for another reason is not retried without the field', async () => {
  let calls = 0;
  const { exchange } = manager(async () => {
    calls++;
    throw new AgentError('HTTP 400 malformed: vips.0: must be an IPv4 address', 400, 'malformed');
  });
  await assert.rejects(exchange.exchangeNow('db1', REQUEST, 1000), /IPv4/);
  assert.equal(calls, 1);
});

test("switchyard_agent_build_info shows each agent's stated build, one series per host through an upgrade", async () => {
  let stated: Partial<SyncAnswer> = {};
  const { exchange, metrics } = manager(async (request) => answer(request.seq, stated));
  const series = async () =>
    (await metrics.agentBuildInfo.get()).values.map((value) => ({
      ...value.labels,
      value: value.value,
    }));
  exchange.send('db1', REQUEST);
  await exchange.settled();
  assert.deepEqual(await series(), [{ host: 'db1', version: 'unknown', protocol: '1', value: 1 }]);
  stated = { version: '9.9.9', protocol: PROTOCOL_VERSION };
  exchange.send('db1', REQUEST);
  await exchange.settled();
  assert.deepEqual(await series(), [
    { host: 'db1', version: '9.9.9', protocol: String(PROTOCOL_VERSION), value: 1 },
  ]);
});
