/**
 * A router polling an agent's health endpoints must never cost the writer lease or the manager's
 * exchange. Routers often run where the manager or a peer agent runs (the manager's host, the
 * writer's own host), so their checks arrive from the same address as the lease pings and the
 * exchange, and share that address's connection budget (16 sockets, src/api/limits.ts).
 * Real sockets on loopback, the agent's real limits; the lease ping is the request at stake.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { validateAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import { createAgentApp } from '../../src/agent/server.js';
import { AGENT_LIMITS } from '../../src/api/limits.js';
import { listen } from '../../src/api/server.js';
import { silentLogger } from '../../src/log.js';
import { MemoryVipDriver } from '../support/memory-agent.js';

const TOKEN = 'health-budget-token';

/** An agent served with the agent's own connection limits; 127.0.0.1 is one of its peers. */
async function servedAgent(t: TestContext): Promise<string> {
  const { config, problems } = validateAgentConfig(
    {
      listen: '127.0.0.1:0',
      auth: { token_env: 'UNUSED_TOKEN' },
      peers: { db1: { agent: 'http://127.0.0.1:9106' }, db2: { agent: 'http://10.9.9.12:9106' } },
    },
    '/tmp/agent.yml',
  );
  assert.deepEqual(problems, []);
  const app = createAgentApp({
    config: config as AgentConfig,
    driver: new MemoryVipDriver(),
    getToken: () => TOKEN,
    logger: silentLogger,
  });
  const server = await listen(app, '127.0.0.1:0', AGENT_LIMITS, undefined, {
    trusted: app.runtime.trusted,
  });
  t.after(() => {
    app.runtime.stop();
    server.close();
    server.closeAllConnections();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The lease's agent-to-agent ping, on a connection of its own (as after a timed-out ping). */
async function leasePing(url: string): Promise<number> {
  const dispatcher = new Agent({ connections: 1 });
  try {
    const response = await request(`${url}/api/v1/lease/ping`, {
      method: 'POST',
      dispatcher,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'db1' }),
      headersTimeout: 2000,
    });
    await response.body.text();
    return response.statusCode;
  } finally {
    await dispatcher.destroy();
  }
}

test('keep-alive health pollers from a peer address leave the lease ping a connection', async (t) => {
  const url = await servedAgent(t);
  const { port } = new URL(url);
  // A checker that keeps its connections open between checks (HTTP/1.1 keep-alive: cloud load
  // balancers' agents, blackbox probes, Go and undici clients), as many as the address may hold.
  const pollers: Socket[] = [];
  t.after(() => pollers.forEach((socket) => socket.destroy()));
  const answers = await Promise.all(
    Array.from({ length: AGENT_LIMITS.perClientConnections }, async () => {
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => undefined);
      pollers.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write('GET /health/writer HTTP/1.1\r\nHost: agent\r\n\r\n');
      return new Promise<string>((resolve) => socket.once('data', (data) => resolve(String(data))));
    }),
  );
  assert.ok(answers.every((answer) => answer.startsWith('HTTP/1.1 503')));
  assert.equal(await leasePing(url), 200, 'the lease ping got a connection and an answer');
  assert.ok(
    answers.every((answer) => /^connection: close\r$/im.test(answer)),
    'a health answer closes its connection: a router holds no agent socket between checks',
  );
});

test('health requests in flight from a peer address leave the lease ping a connection', async (t) => {
  const url = await servedAgent(t);
  const { port } = new URL(url);
  // Checks still sending their request (a slow router, a hung server behind /health/writer):
  // every socket the address may hold is taken until the header deadline.
  const held: Socket[] = [];
  t.after(() => held.forEach((socket) => socket.destroy()));
  for (let index = 0; index < AGENT_LIMITS.perClientConnections; index++) {
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('GET /health/writer HTTP/1.1\r\nHost: agent\r\n');
    held.push(socket);
  }
  // Let the agent count every one of them before the ping arrives.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(
    await leasePing(url),
    200,
    "a peer over its per-address budget still gets the reserve: the lease's voters are peers",
  );
});
