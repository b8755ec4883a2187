/**
 * The agent's /health/writer and /health/reader against real MariaDB servers: the answer follows
 * read_only as the server reports it, the writer lease (an agent cut off from the manager answers
 * 503 from the moment its lease lapses, before its own fence), and a reader's replication. Served
 * on the agent's listener and on its plain-HTTP health_listen.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startAgent, type RunningAgent } from '../../src/agent/agent.js';
import { validateAgentConfig } from '../../src/agent/config.js';
import { silentLogger } from '../../src/log.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { startSandbox, waitFor, type TestSandbox } from '../support/sandbox.js';

const TOKEN = 'agent-health-token-4f1a';

async function agentFor(
  t: import('node:test').TestContext,
  sandbox: TestSandbox,
  host: string,
): Promise<RunningAgent> {
  writeFileSync(join(sandbox.dir, 'agent.token'), `${TOKEN}\n`, { mode: 0o600 });
  const { config, problems } = validateAgentConfig(
    {
      listen: '127.0.0.1:0',
      health_listen: '127.0.0.1:0',
      auth: { token_file: join(sandbox.dir, 'agent.token') },
      mysql: {
        address: '127.0.0.1',
        port: sandbox.instance(host).port,
        user: 'switchyard',
        password_file: join(sandbox.dir, 'mysql.pass'),
      },
      // The test checks read_only itself: a fence that cannot prove it must not stop the server.
      fence: { escalate: 'none' },
    },
    join(sandbox.dir, `${host}-agent.yml`),
  );
  assert.ok(config, JSON.stringify(problems));
  const agent = await startAgent({ config, logger: silentLogger });
  t.after(() => agent.close());
  return agent;
}

let seq = 0;
async function sync(agent: RunningAgent, body: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${agent.url}/api/v1/sync`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ seq: ++seq, interval_ms: 500, prefix: 24, vips: [], ...body }),
  });
  assert.equal(response.status, 200, await response.text());
}

async function health(base: string, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${base}${path}`);
  return { status: response.status, body: (await response.text()).trim() };
}

test('/health/writer follows read_only read live and answers 503 once the lease lapses', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const db1 = sandbox.instance('db1');
  await db1.sql('SET GLOBAL read_only=OFF');
  const agent = await agentFor(t, sandbox, 'db1');
  assert.ok(agent.healthUrl, 'health_listen serves');
  const bases = [agent.url, agent.healthUrl];

  for (const base of bases)
    assert.deepEqual(await health(base, '/health/writer'), {
      status: 503,
      body: 'no exchange with the manager yet',
    });
  const writerExchange = {
    host: 'db1',
    roles: ['writer', 'reader'],
    writer_role: 'writer',
    max_lag_ms: 10_000,
    lease: { duration_ms: 1500, voters: [], managers: 1, writer_vips: [] },
  };
  await sync(agent, writerExchange);
  for (const base of bases)
    assert.deepEqual(await health(base, '/health/writer'), {
      status: 200,
      body: 'writer: lease held, read_only=OFF',
    });

  // read_only flipped on the server, by nobody the agent knows of: the answer follows.
  await db1.sql('SET GLOBAL read_only=ON');
  await sync(agent, writerExchange);
  await waitFor('503 for read_only=ON', async () => {
    const answer = await health(agent.healthUrl as string, '/health/writer');
    return answer.status === 503 && answer.body === 'read_only=ON';
  });
  await db1.sql('SET GLOBAL read_only=OFF');
  await sync(agent, writerExchange);
  await waitFor(
    '200 again',
    async () => (await health(agent.url, '/health/writer')).status === 200,
  );

  // The manager stops calling (this host cut off): the lease lapses and the answer is 503.
  const answer = await waitFor(
    '503 after the lease lapsed',
    async () => {
      const now = await health(agent.healthUrl as string, '/health/writer');
      return now.status === 503 ? now : undefined;
    },
    10_000,
    20,
  );
  assert.match(answer.body, /^writer lease lapsed/);
  // And the agent's own fence follows: the server is read-only.
  await waitFor(
    'the lapsed lease to fence db1',
    async () => Number((await db1.sql('SELECT @@read_only AS ro'))[0]?.ro) === 1,
  );
});

test('/health/reader: a reader role from the exchange and replication running within max_lag', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 1, replicas: 1 });
  const replica = [...sandbox.instances.keys()].find((name) => name !== 'db1') as string;
  const agent = await agentFor(t, sandbox, replica);
  const exchange = { host: replica, writer_role: 'writer', max_lag_ms: 10_000 };

  await sync(agent, { ...exchange, roles: [] });
  assert.deepEqual(await health(agent.url, '/health/reader'), {
    status: 503,
    body: 'holds no reader role per the manager',
  });
  await sync(agent, { ...exchange, roles: ['reader'] });
  const up = await health(agent.healthUrl as string, '/health/reader');
  assert.equal(up.status, 200, up.body);
  assert.match(up.body, /^reader \(reader\), lag 0s$/);
  assert.equal((await health(agent.url, '/health/writer')).status, 503, 'a reader is no writer');

  await sandbox.instance(replica).sql('STOP SLAVE SQL_THREAD');
  await waitFor('503 with the SQL thread stopped', async () => {
    const answer = await health(agent.url, '/health/reader');
    return answer.status === 503 && /replication not running \(io yes, sql no\)/.test(answer.body);
  });
  await sandbox.instance(replica).sql('START SLAVE');
  await waitFor(
    '200 again',
    async () => (await health(agent.url, '/health/reader')).status === 200,
  );
});

test('through the manager, with no role IPs: /health/writer follows the writer across a switchover', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const agents: Record<string, RunningAgent> = {};
  for (const host of ['db1', 'db2', 'db3']) agents[host] = await agentFor(t, sandbox, host);
  writeFileSync(join(sandbox.dir, 'agent.token'), `${TOKEN}\n`, { mode: 0o600 });
  const config = writeTestConfig(sandbox, 'health.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
    raw.listen = `127.0.0.1:${sandbox.listenPort}`;
    for (const role of Object.values(raw.roles as Record<string, { ips?: string[] }>))
      delete role.ips;
    // No actuator.vip: nothing to put on an interface, but the agents get the exchange.
    raw.actuator = { agent_token_file: 'agent.token' };
    for (const host of ['db1', 'db2', 'db3']) raw.hosts[host].agent = agents[host]?.url;
  });
  const { daemon } = await startDaemon(t, config);
  const writerAnswers = async () =>
    Promise.all(
      ['db1', 'db2'].map(
        async (host) => (await health(agents[host]?.healthUrl as string, '/health/writer')).status,
      ),
    );
  await waitFor('db1 alone to answer 200 on /health/writer', async () => {
    const [db1, db2] = await writerAnswers();
    return db1 === 200 && db2 === 503;
  });
  await waitFor(
    'db3 to answer 200 on /health/reader',
    async () => (await health(agents.db3?.url as string, '/health/reader')).status === 200,
  );

  const moved = await daemon.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(moved.ok, true, moved.detail);
  // At once, from the switchover's own exchange: the new writer holds the lease and is writable.
  assert.equal((await health(agents.db2?.url as string, '/health/writer')).status, 200);
  await waitFor('db1 to answer 503', async () => {
    const [db1, db2] = await writerAnswers();
    return db1 === 503 && db2 === 200;
  });
});
