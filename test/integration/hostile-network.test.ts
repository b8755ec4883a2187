/**
 * A hostile network against the manager's and the agent's listeners (issue 23): slow bodies, idle
 * sockets and unfinished TLS handshakes must not take health, metrics, the manager's exchange
 * or other clients down. Attack traffic goes only to 127.0.0.1, from other loopback addresses
 * (127.0.0.2 ...), bounded in count and time.
 */
import assert from 'node:assert/strict';
import { MemoryVipDriver } from '../support/memory-agent.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import express from 'express';
import { validateAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import { createAgentApp } from '../../src/agent/server.js';
import { AGENT_LIMITS, MANAGER_LIMITS } from '../../src/api/limits.js';
import { createHttpApp, listen } from '../../src/api/server.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { silentLogger } from '../../src/log.js';
import { requireBinaries } from '../support/binaries.js';
import { OPENSSL, makeTestCa } from '../support/test-ca.js';
import { waitFor } from '../support/sandbox.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A raw socket from `from` (a loopback address) to the server; destroyed when the test ends. */
function open(t: TestContext, port: number, from: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    socket.on('error', () => undefined);
    socket.resume(); // read, so that the server's close is seen at once
    socket.once('connect', () => resolve(socket));
    socket.once('close', () => reject(new Error('closed before connecting')));
    t.after(() => socket.destroy());
  });
}

/** Whether the server closed `socket` (refused or timed out) within `ms`. */
function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.once('end', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** A request that declares a 100 kB body and sends 4 bytes of it every 1.5 s: it answers with the status line, or "closed". */
function slowBody(
  t: TestContext,
  port: number,
  from: string,
  path: string,
  token: string,
): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    let text = '';
    const trickle = setInterval(() => socket.write('    '), 1500);
    const done = (result: string) => {
      clearInterval(trickle);
      socket.destroy();
      resolve(result);
    };
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      text += chunk.toString();
      if (text.includes('\r\n')) done(text.split('\r\n')[0] as string);
    });
    socket.on('close', () => done(text ? (text.split('\r\n')[0] as string) : 'closed'));
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{',
    );
    t.after(() => done('ended by the test'));
  });
}

/** A GET from 127.0.0.1 with a fresh connection: status code (0 when refused). */
function get(port: number, path: string, token?: string): Promise<number> {
  return new Promise((resolve) => {
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.setTimeout(5000, () => request.destroy());
    request.on('error', () => resolve(0));
    request.end();
  });
}

test('manager: slow bodies from one client or one token leave health, metrics and other clients answered; slow bodies end at the body deadline', async (t) => {
  process.env.SWITCHYARD_HOSTILE_READ = 'hostile-read-token';
  process.env.SWITCHYARD_HOSTILE_OPS = 'hostile-operate-token';
  const router = express.Router();
  router.get('/ping', (_request, response) => response.json({ ok: true }));
  router.post('/echo', (request, response) => response.json({ got: request.body }));
  const app = createHttpApp({
    metrics: new SwitchyardMetrics('test', { processMetrics: false }),
    getTokens: () => [
      { name: 'reader', source: { env: 'SWITCHYARD_HOSTILE_READ' }, scopes: ['read', 'alerts'] },
      { name: 'ops', source: { env: 'SWITCHYARD_HOSTILE_OPS' }, scopes: ['admin'] },
    ],
    apiRouters: [router],
  });
  const server = await listen(app, '127.0.0.1:0', MANAGER_LIMITS);
  t.after(() => {
    server.close();
    server.closeAllConnections();
  });
  const port = (server.address() as AddressInfo).port;

  // 70 slow bodies from one address with the read token (the reported attack).
  const started = Date.now();
  const attack = Array.from({ length: 70 }, () =>
    slowBody(t, port, '127.0.0.2', '/api/v1/alerts', 'hostile-read-token'),
  );
  await sleep(1000);
  assert.equal(await get(port, '/healthz'), 200, '/healthz under attack');
  assert.equal(await get(port, '/metrics'), 200, '/metrics under attack');
  assert.equal(await get(port, '/api/v1/ping', 'hostile-operate-token'), 200, 'another client');

  // The same token from more addresses: its in-flight cap, not the whole server.
  const spread = ['127.0.0.3', '127.0.0.4', '127.0.0.5'].flatMap((from) =>
    Array.from({ length: 8 }, () =>
      slowBody(t, port, from, '/api/v1/alerts', 'hostile-read-token'),
    ),
  );
  await sleep(500);
  assert.equal(await get(port, '/api/v1/ping', 'hostile-operate-token'), 200, 'other token');
  assert.equal(await get(port, '/healthz'), 200);

  const outcomes = await Promise.all([...attack, ...spread]);
  const elapsed = Date.now() - started;
  const busy = outcomes.filter((line) => / 503 /.test(line)).length;
  const timedOut = outcomes.filter((line) => / 408 /.test(line) || line === 'closed').length;
  assert.ok(busy >= 70 - MANAGER_LIMITS.perClientInFlight, `503s: ${busy} of ${outcomes.length}`);
  assert.equal(busy + timedOut, outcomes.length, outcomes.join(' | '));
  // Node's own request timeout is 20 s; the body deadline (5 s) must have ended them well before.
  assert.ok(elapsed < 15_000, `the slow bodies held on for ${elapsed} ms`);
});

/**
 * An agent on 127.0.0.1 with an in-memory VIP driver, listening as `switchyard agent` does (its
 * trusted and priority sources wired into the admission): its port.
 */
async function startLoopbackAgent(t: TestContext, token: string): Promise<number> {
  const { config } = validateAgentConfig(
    {
      listen: '127.0.0.1:0',
      auth: { token_env: 'UNUSED_TOKEN' },
      vip: { interface: 'eth0', ips: ['10.9.9.100'] },
    },
    '/tmp/agent.yml',
  );
  const app = createAgentApp({
    config: config as AgentConfig,
    driver: new MemoryVipDriver(),
    getToken: () => token,
    logger: silentLogger,
    probe: async (target) => ({
      target: target.host,
      ok: true,
      refused: false,
      detail: 'greeting',
      startedAt: Date.now(),
      finishedAt: Date.now(),
    }),
    ping: async () => undefined,
  });
  const server = await listen(app, '127.0.0.1:0', AGENT_LIMITS, undefined, {
    trusted: app.runtime.trusted,
    priority: app.runtime.priority,
  });
  t.after(() => {
    app.runtime.stop();
    server.close();
    server.closeAllConnections();
  });
  return (server.address() as AddressInfo).port;
}

test('agent: idle sockets without a token cannot silence it; they are closed within seconds and the manager keeps its exchange', async (t) => {
  const token = 'hostile-agent-token';
  const port = await startLoopbackAgent(t, token);
  let seq = Date.now() * 1000;
  const sync = async () => {
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/sync`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ seq: ++seq, host: 'db1', vips: ['10.9.9.100'], interval_ms: 500 }),
    });
    await response.text();
    return response.status;
  };
  assert.equal(await sync(), 200, 'the manager before the flood');

  // 16 slow bodies with the agent token (the reported attack), on the exchange's route and on
  // another: the manager's exchange from its own address is still answered.
  const slow = [
    ...Array.from({ length: 16 }, () => slowBody(t, port, '127.0.0.30', '/api/v1/sync', token)),
    ...Array.from({ length: 16 }, () => slowBody(t, port, '127.0.0.31', '/api/v1/vips/add', token)),
  ];
  await sleep(500);
  assert.equal(await sync(), 200, 'the manager during slow bodies');
  assert.equal(await get(port, '/healthz'), 200, '/healthz during slow bodies');
  const slowOutcomes = await Promise.all(slow);
  assert.ok(
    slowOutcomes.every((line) => / (503|408) /.test(line) || line === 'closed'),
    slowOutcomes.join(' | '),
  );

  // One address opens 40 idle sockets: only perClientConnections stay, the rest are reset.
  const one = await Promise.allSettled(
    Array.from({ length: 40 }, () => open(t, port, '127.0.0.20')),
  );
  const fromOne = one.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  await sleep(200);
  const refused = (await Promise.all(fromOne.map((socket) => closedWithin(socket, 0)))).filter(
    Boolean,
  ).length;
  assert.ok(refused >= 40 - AGENT_LIMITS.perClientConnections, `refused ${refused} of 40`);

  // Many addresses fill the general budget (128): a new stranger is refused, the manager (it
  // presented the token) has the reserve, and /healthz from it answers.
  const crowd: Socket[] = [];
  for (let index = 0; index < 10; index++)
    for (let socket = 0; socket < AGENT_LIMITS.perClientConnections; socket++)
      crowd.push(await open(t, port, `127.0.1.${index + 1}`).catch(() => undefined as never));
  await sleep(100);
  assert.equal(await sync(), 200, 'the manager during the flood');
  assert.equal(await get(port, '/healthz'), 200, '/healthz from the manager during the flood');
  const stranger = await open(t, port, '127.0.2.1').catch(() => undefined);
  assert.ok(!stranger || (await closedWithin(stranger, 500)), 'a stranger is refused');

  // Idle sockets are closed within a couple of seconds (the header deadline), not 10 s.
  const idleClosed = await Promise.all(crowd.filter(Boolean).map((s) => closedWithin(s, 5000)));
  assert.ok(idleClosed.every(Boolean), `${idleClosed.filter((x) => !x).length} idle sockets left`);
  assert.equal(await sync(), 200, 'the manager after the flood');
});

/** A GET from `from` with the token, on a fresh connection: status code (0 when refused). */
function getFrom(port: number, from: string, path: string, token: string): Promise<number> {
  return new Promise((resolve) => {
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        localAddress: from,
        agent: false,
        headers: { authorization: `Bearer ${token}` },
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.setTimeout(5000, () => request.destroy());
    request.on('error', () => resolve(0));
    request.end();
  });
}

/** POST /api/v1/sync from 127.0.0.1 on a fresh connection: status code (0 when refused). */
function syncOnNewConnection(port: number, token: string, seq: number): Promise<number> {
  const body = JSON.stringify({ seq, host: 'db1', vips: ['10.9.9.100'], interval_ms: 500 });
  return new Promise((resolve) => {
    const request = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/api/v1/sync',
        method: 'POST',
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.setTimeout(5000, () => request.destroy());
    request.on('error', () => resolve(0));
    request.end(body);
  });
}

test("agent: clients holding the token cannot take the current manager's budgets: its fence gets a new connection and a request slot", async (t) => {
  const token = 'hostile-agent-token';
  const port = await startLoopbackAgent(t, token);
  let seq = Date.now() * 1000;
  assert.equal(await syncOnNewConnection(port, token, ++seq), 200, 'the manager before');

  // Two token holders fill the shared exchange budget with slow bodies on /api/v1/sync ...
  const holders = ['127.0.0.40', '127.0.0.41', '127.0.0.42', '127.0.0.43'];
  const slow = holders
    .slice(0, 2)
    .flatMap((from) =>
      Array.from({ length: AGENT_LIMITS.perClientInFlight }, () =>
        slowBody(t, port, from, '/api/v1/sync', token),
      ),
    );
  // ... two more present the token ...
  for (const from of holders.slice(2))
    assert.equal(await getFrom(port, from, '/api/v1/no-such-route', token), 404);
  await sleep(300);
  // ... strangers fill the general connection budget ...
  for (let index = 0; index < 10; index++)
    for (let socket = 0; socket < AGENT_LIMITS.perClientConnections; socket++)
      await open(t, port, `127.0.1.${index + 1}`).catch(() => undefined);
  // ... and every token holder's address opens idle sockets.
  const reserveTakers = await Promise.allSettled(
    holders.flatMap((from) =>
      Array.from({ length: AGENT_LIMITS.perClientConnections }, () => open(t, port, from)),
    ),
  );
  await sleep(100);
  const heldByHolders = (
    await Promise.all(
      reserveTakers.map((result) =>
        result.status === 'fulfilled' ? closedWithin(result.value, 0) : Promise.resolve(true),
      ),
    )
  ).filter((closed) => !closed).length;
  t.diagnostic(`token holders hold ${heldByHolders} idle sockets beyond the general budget`);
  assert.ok(
    heldByHolders <= holders.length * AGENT_LIMITS.reservedPerClientConnections,
    `the token holders took ${heldByHolders} sockets`,
  );

  assert.equal(
    await syncOnNewConnection(port, token, seq + 1),
    200,
    "the current manager's exchange on a new connection while the budgets are full",
  );
  await Promise.all(slow);
});

test('mutual TLS: sockets that never finish the handshake count against a small pre-auth budget and are closed at the handshake deadline', async (t) => {
  if (!requireBinaries(t, OPENSSL)) return;
  const dir = mkdtempSync(join(tmpdir(), 'hostile-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await makeTestCa(dir, 'hostile');
  const leaf = await ca.issue('server');
  const app = createHttpApp({
    metrics: new SwitchyardMetrics('test', { processMetrics: false }),
    getTokens: () => [],
    apiRouters: [],
  });
  const server = await listen(app, '127.0.0.1:0', AGENT_LIMITS, {
    files: { cert_file: leaf.cert, key_file: leaf.key, client_ca_file: ca.cert },
  });
  t.after(() => {
    server.close();
    server.closeAllConnections();
  });
  const port = (server.address() as AddressInfo).port;
  const stalled: Socket[] = [];
  for (let index = 0; index < 3; index++)
    for (let socket = 0; socket < AGENT_LIMITS.perClientConnections; socket++)
      stalled.push(await open(t, port, `127.0.3.${index + 1}`));
  await sleep(200);
  const refusedAtOnce = (await Promise.all(stalled.map((s) => closedWithin(s, 0)))).filter(
    Boolean,
  ).length;
  assert.ok(
    refusedAtOnce >= stalled.length - AGENT_LIMITS.preAuthConnections,
    `${refusedAtOnce} of ${stalled.length} refused beyond the pre-auth budget`,
  );
  await waitFor(
    'every stalled handshake to be closed',
    async () => (await Promise.all(stalled.map((s) => closedWithin(s, 0)))).every(Boolean),
    AGENT_LIMITS.handshakeTimeoutMs + 3000,
    100,
  );
});
