import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startAgent } from '../../src/agent/agent.js';
import { validateAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import type { HeldAddress, VipDriver } from '../../src/agent/vip-driver.js';
import { AgentClient, AgentError } from '../../src/actuator/agent-client.js';
import { StepRecorder } from '../../src/actuator/recorder.js';
import { VipActions } from '../../src/actuator/vip-actions.js';
import { MemoryJournal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log.js';
import type { SnapshotInfo, SnapshotMethod } from '../../src/snapshot/types.js';

/** In-memory interfaces; announce() takes `announceMs` like arping's one-second wait. */
class FakeDriver implements VipDriver {
  readonly interfaces = new Map<string, HeldAddress[]>([
    ['eth0', [{ ip: '10.9.9.11', prefix: 24 }]],
  ]);
  readonly calls: string[] = [];
  announced: string[] = [];
  constructor(private readonly announceMs = 0) {}
  async list(iface: string): Promise<HeldAddress[]> {
    const addresses = this.interfaces.get(iface);
    if (!addresses) throw new Error(`Device "${iface}" does not exist.`);
    return addresses.map((address) => ({ ...address }));
  }
  async add(ip: string, prefix: number, iface: string): Promise<void> {
    this.calls.push(`add ${ip}/${prefix} ${iface}`);
    const addresses = this.interfaces.get(iface) ?? [];
    if (addresses.some((address) => address.ip === ip))
      throw new Error('RTNETLINK answers: File exists');
    addresses.push({ ip, prefix });
  }
  async remove(ip: string, prefix: number, iface: string): Promise<void> {
    this.calls.push(`del ${ip}/${prefix} ${iface}`);
    const addresses = this.interfaces.get(iface) ?? [];
    this.interfaces.set(
      iface,
      addresses.filter((address) => address.ip !== ip),
    );
  }
  async announce(ip: string): Promise<string> {
    await new Promise((resolve) => setTimeout(resolve, this.announceMs));
    this.announced.push(ip);
    return 'Sent 1 probes (1 broadcast(s))';
  }
  snapshot(): string {
    return JSON.stringify([...this.interfaces]);
  }
}

class FakeSnapshots implements SnapshotMethod {
  readonly name = 'btrfs' as const;
  readonly taken: SnapshotInfo[] = [];
  async take(request: { id: string }): Promise<SnapshotInfo> {
    const info: SnapshotInfo = {
      id: request.id,
      method: 'btrfs',
      path: `/snapshots/${request.id}`,
      gtidPosition: '0-1-5',
      createdAt: new Date().toISOString(),
    };
    this.taken.push(info);
    return info;
  }
  async remove(snapshot: SnapshotInfo): Promise<void> {
    this.taken.splice(
      this.taken.findIndex((entry) => entry.id === snapshot.id),
      1,
    );
  }
  async list(): Promise<SnapshotInfo[]> {
    return [...this.taken];
  }
}

function agentConfig(extra: Record<string, unknown> = {}): AgentConfig {
  process.env.SWITCHYARD_TEST_AGENT_TOKEN = 'agent-secret';
  const { config, problems } = validateAgentConfig(
    {
      listen: '127.0.0.1:0',
      auth: { token_env: 'SWITCHYARD_TEST_AGENT_TOKEN' },
      vip: { interface: 'eth0', ips: ['10.9.9.100', '10.9.9.101'] },
      ...extra,
    },
    '/tmp/agent.yml',
  );
  assert.deepEqual(problems, []);
  return config as AgentConfig;
}

const auth = { authorization: 'Bearer agent-secret', 'content-type': 'application/json' };

test('agent API: auth, allow-lists, malformed bodies, idempotent VIP changes, ARP after the reply', async (t) => {
  const driver = new FakeDriver(400);
  const agent = await startAgent({ config: agentConfig(), logger: silentLogger, driver });
  t.after(() => agent.close());
  const post = (path: string, body: string, headers: Record<string, string> = auth) =>
    fetch(`${agent.url}/api/v1${path}`, { method: 'POST', body, headers });
  const unchanged = driver.snapshot();

  const refusals: Array<[string, Promise<Response>, number, RegExp]> = [
    [
      'no token',
      post('/vips/add', '{"ip":"10.9.9.100"}', { 'content-type': 'application/json' }),
      401,
      /Bearer/,
    ],
    [
      'wrong token',
      post('/vips/add', '{"ip":"10.9.9.100"}', { ...auth, authorization: 'Bearer nope' }),
      401,
      /not valid/,
    ],
    [
      'IP outside the list',
      post('/vips/add', '{"ip":"10.9.9.200"}'),
      403,
      /10\.9\.9\.200 is not one of this agent's VIPs/,
    ],
    [
      'foreign interface',
      post('/vips/add', '{"ip":"10.9.9.100","interface":"eth1"}'),
      403,
      /interface "eth1" is not this agent's/,
    ],
    ['not an IP', post('/vips/add', '{"ip":"10.9.9"}'), 400, /ip: must be an IPv4 address/],
    ['missing ip', post('/vips/add', '{}'), 400, /ip:/],
    [
      'unknown key',
      post('/vips/add', '{"ip":"10.9.9.100","dev":"eth0"}'),
      400,
      /unknown key\(s\) dev/,
    ],
    ['bad prefix', post('/vips/add', '{"ip":"10.9.9.100","prefix":40}'), 400, /prefix/],
    ['broken JSON', post('/vips/add', '{"ip":'), 400, /not valid JSON/],
    [
      'not JSON',
      post('/vips/add', 'ip=10.9.9.100', { ...auth, 'content-type': 'text/plain' }),
      415,
      /application\/json/,
    ],
    [
      'remove IP outside the list',
      post('/vips/remove', '{"ip":"10.9.9.11"}'),
      403,
      /not one of this agent's VIPs/,
    ],
  ];
  for (const [what, pending, status, detail] of refusals) {
    const response = await pending;
    const body = (await response.json()) as { error: string; detail: string };
    assert.equal(response.status, status, `${what}: ${JSON.stringify(body)}`);
    assert.match(body.detail, detail, what);
    assert.equal(driver.snapshot(), unchanged, `${what} changed nothing`);
  }
  assert.deepEqual(driver.calls, []);

  const started = Date.now();
  const added = await post('/vips/add', '{"ip":"10.9.9.100","interface":"eth0","prefix":24}');
  const replyMs = Date.now() - started;
  assert.equal(added.status, 200);
  assert.deepEqual(await added.json(), {
    ip: '10.9.9.100',
    interface: 'eth0',
    prefix: 24,
    changed: true,
  });
  assert.deepEqual(
    driver.announced,
    [],
    `the reply (${replyMs} ms) came before the 400 ms announcement finished`,
  );
  t.diagnostic(`add replied after ${replyMs} ms; announcement still running`);
  const again = await post('/vips/add', '{"ip":"10.9.9.100"}');
  assert.deepEqual(await again.json(), {
    ip: '10.9.9.100',
    interface: 'eth0',
    prefix: 24,
    changed: false,
  });
  assert.deepEqual(driver.calls, ['add 10.9.9.100/24 eth0'], 'adding twice runs ip addr add once');

  const list = await fetch(`${agent.url}/api/v1/vips`, { headers: auth });
  assert.deepEqual(await list.json(), {
    interface: 'eth0',
    allowed: ['10.9.9.100', '10.9.9.101'],
    held: [{ ip: '10.9.9.100', prefix: 24 }],
  });

  const removed = await post('/vips/remove', '{"ip":"10.9.9.100"}');
  assert.deepEqual(await removed.json(), {
    ip: '10.9.9.100',
    interface: 'eth0',
    prefix: 24,
    changed: true,
  });
  const removedAgain = await post('/vips/remove', '{"ip":"10.9.9.100"}');
  assert.deepEqual(await removedAgain.json(), {
    ip: '10.9.9.100',
    interface: 'eth0',
    changed: false,
  });
  assert.deepEqual(driver.calls, ['add 10.9.9.100/24 eth0', 'del 10.9.9.100/24 eth0']);
  assert.equal((await fetch(`${agent.url}/healthz`)).status, 200);
  assert.equal((await fetch(`${agent.url}/api/v1/nothing`, { headers: auth })).status, 404);
  await new Promise((resolve) => setTimeout(resolve, 900));
  assert.deepEqual(
    driver.announced,
    ['10.9.9.100', '10.9.9.100'],
    'both adds announced, after their replies',
  );
});

test('agent API: snapshots through an injected method, path allow-list, 501 without a method', async (t) => {
  const settings = { snapshot: { method: 'btrfs', path: '/var/lib/mysql' } };
  const withoutMethod = await startAgent({
    config: agentConfig(settings),
    logger: silentLogger,
    driver: new FakeDriver(),
  });
  t.after(() => withoutMethod.close());
  const missing = await fetch(`${withoutMethod.url}/api/v1/snapshots`, { headers: auth });
  assert.equal(missing.status, 501);

  const method = new FakeSnapshots();
  const agent = await startAgent({
    config: agentConfig(settings),
    logger: silentLogger,
    driver: new FakeDriver(),
    snapshotMethod: method,
  });
  t.after(() => agent.close());
  const client = new AgentClient({
    url: agent.url,
    token: () => 'agent-secret',
    timeoutMs: 2000,
    retries: 0,
  });
  const wrongPath = await fetch(`${agent.url}/api/v1/snapshots`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ id: 's1', path: '/etc' }),
  });
  assert.equal(wrongPath.status, 403);
  assert.match(
    ((await wrongPath.json()) as { detail: string }).detail,
    /path "\/etc" is not this agent's snapshot path/,
  );
  const badId = await fetch(`${agent.url}/api/v1/snapshots`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ id: '../x' }),
  });
  assert.equal(badId.status, 400);
  assert.deepEqual(method.taken, [], 'refusals took nothing');
  const info = await client.takeSnapshot('s1');
  assert.equal(info.gtidPosition, '0-1-5');
  await assert.rejects(client.takeSnapshot('s1'), (error: AgentError) => error.status === 409);
  assert.deepEqual(
    (await client.listSnapshots()).snapshots.map((snapshot) => snapshot.id),
    ['s1'],
  );
  assert.deepEqual(await client.removeSnapshot('s1'), { id: 's1', removed: true });
  assert.deepEqual(await client.removeSnapshot('s1'), { id: 's1', removed: false });
});

test('agent client: retries idempotent requests after 5xx and timeouts, never after 4xx', async (t) => {
  let requests = 0;
  let mode: 'flaky' | 'refuse' | 'hang' = 'flaky';
  const server = createServer((request, response) => {
    requests++;
    assert.equal(request.headers.authorization, 'Bearer tok');
    if (mode === 'hang') return;
    if (mode === 'refuse') {
      response
        .writeHead(403, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'ip_not_allowed', detail: 'no' }));
      return;
    }
    if (requests < 3) {
      response
        .writeHead(503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'busy', detail: 'try again' }));
      return;
    }
    response
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ ip: '10.9.9.100', interface: 'eth0', prefix: 24, changed: true }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new AgentClient({
    url,
    token: () => 'tok',
    timeoutMs: 300,
    retries: 2,
    retryDelayMs: 10,
  });
  assert.equal((await client.addVip('10.9.9.100', 'eth0', 24)).changed, true);
  assert.equal(requests, 3);

  mode = 'refuse';
  requests = 0;
  await assert.rejects(
    client.removeVip('10.9.9.100', 'eth0'),
    (error: AgentError) => error.status === 403 && /ip_not_allowed/.test(error.message),
  );
  assert.equal(requests, 1, 'a refusal is not retried');

  mode = 'hang';
  requests = 0;
  await assert.rejects(
    client.listVips(),
    (error: AgentError) =>
      error.status === undefined && /no answer within 300 ms/.test(error.message),
  );
  assert.equal(requests, 3);
  requests = 0;
  await assert.rejects(client.takeSnapshot('s1'), /no answer/);
  assert.equal(requests, 1, 'taking a snapshot is not idempotent, so it is not retried');
});

test('VIP actions: journaled, idempotent through the agent, planned only in dry-run', async (t) => {
  const driver = new FakeDriver();
  const agent = await startAgent({ config: agentConfig(), logger: silentLogger, driver });
  t.after(() => agent.close());
  const journal = new MemoryJournal();
  const options = {
    agents: { db1: agent.url, db2: undefined },
    interface: 'eth0',
    prefix: 24,
    token: () => 'agent-secret',
    timeoutMs: 2000,
    retries: 1,
  };
  const vips = new VipActions({
    ...options,
    recorder: new StepRecorder({ dryRun: false, journal }),
  });
  await vips.addVip('db1', '10.9.9.101');
  await vips.addVip('db1', '10.9.9.101');
  assert.deepEqual(await vips.listVips('db1'), ['10.9.9.101']);
  await vips.removeVip('db1', '10.9.9.101');
  await vips.removeVip('db1', '10.9.9.101');
  assert.deepEqual(await vips.listVips('db1'), []);
  assert.deepEqual(
    journal.entries
      .filter((entry) => entry.phase === 'after')
      .map((entry) => `${entry.event} ${entry.detail}`),
    [
      'vip.add added and announced',
      'vip.add already held (no-op)',
      'vip.remove removed',
      'vip.remove was not held (no-op)',
    ],
  );
  await assert.rejects(vips.addVip('db2', '10.9.9.101'), /no agent configured/);
  await assert.rejects(vips.addVip('db9', '10.9.9.101'), /unknown host "db9"/);
  await assert.rejects(vips.addVip('db1', '10.9.9.222'), /HTTP 403/);

  const dryJournal = new MemoryJournal();
  const dry = new VipActions({
    ...options,
    recorder: new StepRecorder({ dryRun: true, journal: dryJournal }),
  });
  const callsBefore = driver.calls.length;
  await dry.addVip('db1', '10.9.9.100');
  await dry.removeVip('db1', '10.9.9.101');
  assert.equal(driver.calls.length, callsBefore, 'dry-run touched nothing');
  assert.deepEqual(
    dryJournal.entries.map((entry) => `${entry.event} ${entry.outcome}`),
    ['vip.add dry-run', 'vip.remove dry-run'],
  );
});
