import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import express from 'express';
import pino from 'pino';
import { startAgent, type RunningAgent } from '../../src/agent/agent.js';
import { validateAgentConfig } from '../../src/agent/config.js';
import { MANAGER_LIMITS } from '../../src/api/limits.js';
import { createHttpApp, listen } from '../../src/api/server.js';
import { readSecret } from '../../src/config/secrets.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { createLogger } from '../../src/log.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { RecordingVipDriver } from '../support/recording-vip-driver.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

test('the servers cap requests in flight (503 busy) and cut off a client that never finishes its headers', async (t) => {
  process.env.SWITCHYARD_LIMITS_TOKEN = 'limits-token';
  const metrics = new SwitchyardMetrics('test', { processMetrics: false });
  const router = express.Router();
  const waiting: Array<() => void> = [];
  router.get('/slow', (_request, response) => {
    waiting.push(() => response.json({ ok: true }));
  });
  const app = createHttpApp({
    metrics,
    getTokens: () => [
      { name: 'admin', source: { env: 'SWITCHYARD_LIMITS_TOKEN' }, scopes: ['admin'] },
    ],
    apiRouters: [router],
    maxInFlight: 2,
  });
  const server = await listen(app, '127.0.0.1:0', {
    ...MANAGER_LIMITS,
    headersTimeoutMs: 300,
    requestTimeoutMs: 600,
    checkIntervalMs: 100,
  });
  t.after(() => {
    server.close();
    server.closeAllConnections();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const slow = () =>
    fetch(`${base}/api/v1/slow`, { headers: { authorization: 'Bearer limits-token' } });
  const first = slow();
  const second = slow();
  await waitFor('two requests in flight', async () => waiting.length === 2, 5000, 20);
  const third = await slow();
  assert.equal(third.status, 503);
  assert.equal(third.headers.get('retry-after'), '1');
  assert.equal(((await third.json()) as { error: string }).error, 'busy');
  for (const release of waiting.splice(0)) release();
  assert.equal((await first).status, 200);
  assert.equal((await second).status, 200);
  const fourth = slow();
  await waitFor('a slot to be free again', async () => waiting.length === 1, 5000, 20);
  waiting.pop()?.();
  assert.equal((await fourth).status, 200, 'finished requests free their slot');

  // A client that sends half a request and stalls is answered 408 and disconnected.
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    setTimeout(() => {
      socket.destroy();
      reject(new Error('the server kept a stalled client connected'));
    }, 10_000).unref();
  });
  assert.match(answer, /^HTTP\/1\.1 408/);
});

test('no token or password appears in any log line or journal entry of a daemon and its agents', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const secrets = {
    admin: readSecret({ file: join(sandbox.dir, 'token') }, 'token'),
    mysql: readSecret({ file: join(sandbox.dir, 'mysql.pass') }, 'mysql'),
    replication: readSecret({ file: join(sandbox.dir, 'repl.pass') }, 'repl'),
    alerts: 'hardening-alerts-token-5b1e',
    agent: 'hardening-agent-token-c7d2',
  };
  writeFileSync(join(sandbox.dir, 'am.token'), `${secrets.alerts}\n`, { mode: 0o600 });
  writeFileSync(join(sandbox.dir, 'agent.token'), `${secrets.agent}\n`, { mode: 0o600 });
  const ips = ['127.0.1.100', '127.0.1.101', '127.0.1.102', '127.0.1.103'];
  const agents: Record<string, { agent: RunningAgent; driver: RecordingVipDriver; log: string }> =
    {};
  for (const host of ['db1', 'db2', 'db3']) {
    const { config, problems } = validateAgentConfig(
      {
        listen: '127.0.0.1:0',
        auth: { token_file: join(sandbox.dir, 'agent.token') },
        vip: { interface: 'eth0', ips },
      },
      join(sandbox.dir, `${host}-agent.yml`),
    );
    assert.ok(config, JSON.stringify(problems));
    const log = join(sandbox.dir, `${host}-agent.log`);
    const driver = new RecordingVipDriver('eth0');
    const agent = await startAgent({
      config,
      driver,
      logger: createLogger('agent', {
        level: 'debug',
        destination: pino.destination({ dest: log, sync: true }),
      }),
    });
    t.after(() => agent.close());
    agents[host] = { agent, driver, log };
  }
  const config = writeTestConfig(sandbox, 'hardening.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
    raw.auth = {
      token_file: 'token',
      tokens: [{ name: 'am', file: 'am.token', scopes: ['alerts'] }],
    };
    raw.actuator = { vip: { interface: 'eth0' }, agent_token_file: 'agent.token' };
    for (const host of ['db1', 'db2', 'db3']) raw.hosts[host].agent = agents[host]?.agent.url;
  });
  const { daemon, url, logFile } = await startDaemon(t, config, 'hardening-daemon.log');
  await waitFor(
    'db1 to hold a reader VIP on its agent',
    async () => agents.db1?.driver.ips().length,
    20_000,
  );
  await waitFor(
    'db3 to be ONLINE',
    async () => daemon.status().hosts.find((host) => host.name === 'db3')?.state === 'ONLINE',
    20_000,
  );

  const call = (
    token: string | undefined,
    method: string,
    path: string,
    body?: unknown,
    raw?: string,
  ) =>
    fetch(`${url}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined && raw === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
  // Good and bad requests, including bad ones that carry a real secret in the wrong place.
  assert.equal((await call(secrets.admin, 'GET', '/api/v1/status')).status, 200);
  assert.equal((await call(`${secrets.admin}x`, 'GET', '/api/v1/status')).status, 401);
  assert.equal(
    (await call(secrets.agent, 'GET', '/api/v1/status')).status,
    401,
    'the agent token is not an API token',
  );
  assert.equal(
    (await call(secrets.alerts, 'POST', '/api/v1/roles/writer/move', { host: 'db2' })).status,
    403,
  );
  assert.equal(
    (
      await call(
        secrets.admin,
        'POST',
        '/api/v1/alerts',
        undefined,
        `{"version":"4","password":"${secrets.mysql}"`,
      )
    ).status,
    400,
  );
  assert.equal(
    (await call(secrets.admin, 'PUT', '/api/v1/mode', { mode: secrets.replication })).status,
    400,
  );
  const alert = {
    status: 'firing',
    labels: { alertname: 'SwitchyardReplicationLagHigh', host: 'db3', cluster: 'sandbox' },
    annotations: {},
    startsAt: '2026-11-25T03:00:00Z',
    endsAt: '0001-01-01T00:00:00Z',
    fingerprint: 'x',
  };
  assert.equal(
    (
      await call(secrets.alerts, 'POST', '/api/v1/alerts', {
        version: '4',
        status: 'firing',
        receiver: 'switchyard',
        groupKey: 'k',
        alerts: [alert],
      })
    ).status,
    200,
  );
  const agentUrl = agents.db2?.agent.url as string;
  assert.equal(
    (
      await fetch(`${agentUrl}/api/v1/vips`, {
        headers: { authorization: `Bearer ${secrets.admin}` },
      })
    ).status,
    401,
    'an API token is not an agent token',
  );
  assert.equal(
    (
      await fetch(`${agentUrl}/api/v1/vips`, {
        headers: { authorization: `Bearer ${secrets.agent}` },
      })
    ).status,
    200,
  );
  // A switchover: CHANGE MASTER with the replication password, VIP moves through the agents.
  const moved = await call(secrets.admin, 'POST', '/api/v1/roles/writer/move', { host: 'db2' });
  assert.equal(moved.status, 200, await moved.text());
  await waitFor(
    'db2 to hold the writer VIP',
    async () => agents.db2?.driver.ips().includes('127.0.1.100'),
    10_000,
  );
  await daemon.stop();

  const files = {
    daemon: logFile,
    journal: join(config.state_dir, 'journal.jsonl'),
    ...Object.fromEntries(
      Object.entries(agents).map(([host, entry]) => [`${host} agent`, entry.log]),
    ),
  };
  let lines = 0;
  for (const [what, file] of Object.entries(files)) {
    const text = readFileSync(file, 'utf8');
    lines += text.split('\n').length;
    for (const [name, secret] of Object.entries(secrets))
      assert.ok(!text.includes(secret), `the ${name} secret appears in the ${what} log (${file})`);
  }
  const daemonLog = readFileSync(logFile, 'utf8');
  const journal = readFileSync(files.journal, 'utf8');
  assert.match(daemonLog, /"event":"webhook\.received"/, 'the daemon logged the requests');
  assert.match(
    journal,
    /"phase":"after","event":"mysql\.repoint",[^\n]*"host":"db3"[^\n]*"outcome":"ok"/,
    'db3 was repointed (CHANGE MASTER with the replication password) and journaled',
  );
  assert.match(
    readFileSync(agents.db2?.log as string, 'utf8'),
    /"status":401/,
    'the agent logged the refused request',
  );
  t.diagnostic(`${lines} log and journal lines checked for ${Object.keys(secrets).length} secrets`);
});
