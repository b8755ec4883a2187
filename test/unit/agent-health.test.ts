/**
 * The agent's /health/writer and /health/reader: the decisions, the cached single-flight read of
 * the server, and the endpoints themselves (no token, answered while every budget is full).
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { validateAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import {
  LiveServerState,
  readerHealth,
  writerHealth,
  type ServerReading,
} from '../../src/agent/health.js';
import { createAgentApp } from '../../src/agent/server.js';
import type { HeldAddress, VipDriver } from '../../src/agent/vip-driver.js';
import { listen } from '../../src/api/server.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../support/sandbox.js';

const holding = { holding: true, lapsed: false, fenced: false };
const writable: ServerReading = { ok: true, readOnly: false };
const writerExchange = { roles: ['writer', 'reader'], writerRole: 'writer', maxLagMs: 10_000 };

test('/health/writer: 200 only for the writer per the manager, holding its lease, read_only=OFF', () => {
  assert.equal(
    writerHealth({ exchange: writerExchange, lease: holding, server: writable }).healthy,
    true,
  );
  const cases: Array<[Parameters<typeof writerHealth>[0], RegExp]> = [
    [{ lease: holding, server: writable }, /no exchange/],
    [
      { exchange: { ...writerExchange, roles: ['reader'] }, lease: holding, server: writable },
      /not the writer/,
    ],
    [
      {
        exchange: writerExchange,
        lease: { holding: false, lapsed: true, fenced: false },
        server: writable,
      },
      /lease lapsed/,
    ],
    [
      {
        exchange: writerExchange,
        lease: { holding: false, lapsed: false, fenced: false },
        server: writable,
      },
      /lease not held/,
    ],
    [
      { exchange: writerExchange, lease: holding, server: { ok: true, readOnly: true } },
      /read_only=ON/,
    ],
    [
      { exchange: writerExchange, lease: holding, server: { ok: false, error: 'refused' } },
      /cannot read read_only: refused/,
    ],
  ];
  for (const [input, reason] of cases) {
    const verdict = writerHealth(input);
    assert.equal(verdict.healthy, false, JSON.stringify(input));
    assert.match(verdict.reason, reason);
  }
  // The lease is decided before the server is read: an isolated writer needs no query to say 503.
  assert.equal(
    writerHealth({ exchange: writerExchange, lease: { ...holding, holding: false } }).needsServer,
    undefined,
  );
  assert.equal(writerHealth({ exchange: writerExchange, lease: holding }).needsServer, true);
});

test('/health/reader: a reader role per the manager and replication within max_lag', () => {
  const reader = { roles: ['reader'], writerRole: 'writer', maxLagMs: 5000 };
  const replica = (io: boolean, sql: boolean, secondsBehind: number | null): ServerReading => ({
    ok: true,
    readOnly: true,
    replica: { ioRunning: io, sqlRunning: sql, secondsBehind },
  });
  assert.equal(readerHealth({ exchange: reader, server: replica(true, true, 5) }).healthy, true);
  assert.match(
    readerHealth({ exchange: reader, server: replica(true, true, 6) }).reason,
    /lag 6s above max_lag 5000ms/,
  );
  assert.match(
    readerHealth({ exchange: reader, server: replica(false, true, null) }).reason,
    /replication not running/,
  );
  assert.match(
    readerHealth({ exchange: reader, server: replica(true, true, null) }).reason,
    /lag unknown/,
  );
  assert.match(
    readerHealth({ exchange: { ...reader, roles: [] }, server: replica(true, true, 0) }).reason,
    /no reader role/,
  );
  assert.match(
    readerHealth({ exchange: { ...reader, roles: ['writer'] }, server: replica(true, true, 0) })
      .reason,
    /no reader role/,
  );
  // The writer's replication from the passive master is not held against it.
  assert.equal(
    readerHealth({ exchange: writerExchange, server: replica(false, false, null) }).healthy,
    true,
  );
  // No replication configured: no lag.
  assert.equal(readerHealth({ exchange: reader, server: writable }).healthy, true);
  assert.match(
    readerHealth({ exchange: reader, server: { ok: false, error: 'gone' } }).reason,
    /cannot read the server: gone/,
  );
});

test('the live read is shared by concurrent requests and reused only while fresh', async () => {
  let now = 1000;
  let reads = 0;
  let release: (reading: ServerReading) => void = () => undefined;
  const state = new LiveServerState(
    () =>
      new Promise<ServerReading>((resolve) => {
        reads++;
        release = resolve;
      }),
    { now: () => now },
  );
  const first = state.current();
  const second = state.current();
  assert.equal(reads, 1, 'one query in flight');
  release({ ok: true, readOnly: false });
  assert.deepEqual(await first, { ok: true, readOnly: false });
  assert.deepEqual(await second, { ok: true, readOnly: false });
  now += 100;
  await state.current();
  assert.equal(reads, 1, 'a result 100 ms old is reused');
  now += 1;
  const third = state.current();
  assert.equal(reads, 2, 'an older one is not');
  release({ ok: true, readOnly: true });
  assert.deepEqual(await third, { ok: true, readOnly: true });
});

class NoVips implements VipDriver {
  async list(): Promise<HeldAddress[]> {
    return [];
  }
  async add(): Promise<void> {}
  async remove(): Promise<void> {}
  async announce(): Promise<string> {
    return 'sent';
  }
}

const TOKEN = 'health-test-token';

test('the endpoints answer without a token, from the exchange, before every request budget', async (t) => {
  const { config } = validateAgentConfig(
    { listen: '127.0.0.1:0', auth: { token_env: 'UNUSED_TOKEN' } },
    '/tmp/agent.yml',
  );
  let reading: ServerReading = { ok: true, readOnly: false };
  const app = createAgentApp({
    config: config as AgentConfig,
    driver: new NoVips(),
    getToken: () => TOKEN,
    logger: silentLogger,
    readServer: async () => reading,
    ping: async () => undefined,
    // No request slot at all: only what is answered before the budgets gets through.
    maxInFlight: 0,
  });
  const server = await listen(app, '127.0.0.1:0');
  t.after(() => {
    app.runtime.stop();
    server.close();
    server.closeAllConnections();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const get = async (path: string) => {
    const response = await fetch(`${url}${path}`);
    return { status: response.status, body: await response.text() };
  };
  assert.deepEqual(await get('/health/writer'), {
    status: 503,
    body: 'no exchange with the manager yet\n',
  });
  const busy = await fetch(`${url}/api/v1/sync`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: '{}',
  });
  assert.equal(busy.status, 503, 'the budget is full for everything else');
  await busy.arrayBuffer();

  // Fed directly: the full budget refuses the exchange itself.
  app.runtime.health.exchange.note({ roles: ['writer'], writerRole: 'writer', maxLagMs: 1000 });
  assert.match((await get('/health/writer')).body, /lease not held/);
  assert.match((await get('/health/reader')).body, /no reader role/);
  app.runtime.lease.configure({
    self: 'db1',
    durationMs: 60_000,
    intervalMs: 1000,
    voters: [],
    managers: 1,
    writerVips: [],
  });
  app.runtime.lease.managerContact();
  assert.deepEqual(await get('/health/writer'), {
    status: 200,
    body: 'writer: lease held, read_only=OFF\n',
  });
  reading = { ok: true, readOnly: true };
  await waitFor('read_only=ON to show', async () => (await get('/health/writer')).status === 503);
  assert.match((await get('/health/writer')).body, /read_only=ON/);
});

test('the exchange carries the roles; an agent without a vip section takes an exchange without VIPs', async (t) => {
  const { config } = validateAgentConfig(
    { listen: '127.0.0.1:0', auth: { token_env: 'UNUSED_TOKEN' } },
    '/tmp/agent.yml',
  );
  const app = createAgentApp({
    config: config as AgentConfig,
    driver: new NoVips(),
    getToken: () => TOKEN,
    logger: silentLogger,
    readServer: async () => ({
      ok: true,
      readOnly: true,
      replica: { ioRunning: true, sqlRunning: true, secondsBehind: 3 },
    }),
    ping: async () => undefined,
  });
  const server = await listen(app, '127.0.0.1:0');
  t.after(() => {
    app.runtime.stop();
    server.close();
    server.closeAllConnections();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sync = async (body: Record<string, unknown>) => {
    const response = await fetch(`${url}/api/v1/sync`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ host: 'db3', interval_ms: 200, prefix: 24, ...body }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const reader = async () => {
    const response = await fetch(`${url}/health/reader`);
    return { status: response.status, body: await response.text() };
  };
  const first = await sync({
    seq: 1,
    vips: [],
    roles: ['reader'],
    writer_role: 'writer',
    max_lag_ms: 10_000,
  });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.deepEqual(await reader(), { status: 200, body: 'reader (reader), lag 3s\n' });
  await sync({ seq: 2, vips: [], roles: ['reader'], writer_role: 'writer', max_lag_ms: 2000 });
  assert.deepEqual(await reader(), { status: 503, body: 'lag 3s above max_lag 2000ms\n' });
  await sync({ seq: 3, vips: [], roles: [], writer_role: 'writer', max_lag_ms: 10_000 });
  assert.equal((await reader()).status, 503);
  const withVips = await sync({ seq: 4, vips: ['10.9.9.100'] });
  assert.equal(withVips.status, 409, 'VIPs still need a vip section');
});
