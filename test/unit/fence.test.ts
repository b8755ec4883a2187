/**
 * Fence verdicts: a fence counts only when proved (read_only read back, or the server stopped and
 * its address refusing). A failed login, a read_only that reads back OFF, an agent without a
 * mysql section: each is unproved, said so, and retried.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { validateAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import { LeaseKeeper } from '../../src/agent/lease.js';
import { LocalFence, type FenceVerdict, type LocalMysql } from '../../src/agent/local-fence.js';
import { createAgentApp } from '../../src/agent/server.js';
import type { HeldAddress, VipDriver } from '../../src/agent/vip-driver.js';
import { listen } from '../../src/api/server.js';
import { silentLogger } from '../../src/log.js';
import type { Connection } from '../../src/mysql/connect.js';

/** A closed loopback port: nothing listens, connections are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function mysqlAt(port: number): LocalMysql {
  return { address: '127.0.0.1', port, user: 'switchyard', password: () => 'x' };
}

/** A server whose read_only takes the value `readBack` when set ON. */
function fakeServer(readBack: number, log: string[] = []) {
  return async (): Promise<Connection> => {
    let readOnly = 0;
    return {
      query: async (sql: string) => {
        log.push(sql.split(' ').slice(0, 3).join(' '));
        if (/CONNECTION_ID/.test(sql)) return [[{ id: 7 }]];
        if (/SET GLOBAL read_only=ON/.test(sql)) readOnly = readBack;
        if (/@@global.read_only/.test(sql)) return [[{ read_only: readOnly }]];
        if (/gtid_binlog_pos/.test(sql))
          return [[{ binlog: '0-1-150', slave: '0-2-40,1-1-7', current: '0-1-150,1-1-7' }]];
        return [[]];
      },
      destroy: () => undefined,
    } as unknown as Connection;
  };
}

const accessDenied = async (): Promise<Connection> => {
  throw Object.assign(new Error("Access denied for user 'switchyard'@'localhost'"), {
    errno: 1045,
    code: 'ER_ACCESS_DENIED_ERROR',
  });
};

test('fence: read_only=ON read back is a proof', async () => {
  const fence = new LocalFence({
    mysql: mysqlAt(3306),
    escalate: 'none',
    open: fakeServer(1),
  });
  const verdict = await fence.fence();
  assert.equal(verdict.proved, true);
  assert.equal(verdict.how, 'read_only');
  assert.match(verdict.detail, /read_only=ON read back/);
  // Read after the proof: the new writer must have it before a failover promotes it.
  assert.equal(verdict.position, '0-1-150,1-1-7');
  assert.match(verdict.detail, /final position 0-1-150,1-1-7/);
});

test('fence: a login that fails is not a fence (escalation none: unproved, and says why)', async () => {
  const fence = new LocalFence({
    mysql: mysqlAt(3306),
    escalate: 'none',
    open: accessDenied,
  });
  const verdict = await fence.fence();
  assert.equal(verdict.proved, false);
  assert.equal(verdict.how, 'unproved');
  assert.match(verdict.detail, /Access denied/);
  assert.match(verdict.detail, /escalate is none/);
});

test('fence: read_only that reads back OFF is not a fence', async () => {
  const fence = new LocalFence({ mysql: mysqlAt(3306), escalate: 'none', open: fakeServer(0) });
  const verdict = await fence.fence();
  assert.equal(verdict.proved, false);
  assert.match(verdict.detail, /reads back OFF/);
});

test('fence: no mysql section and nothing to stop is unproved, never "fenced"', async () => {
  const fence = new LocalFence({ escalate: 'kill' });
  const verdict = await fence.fence();
  assert.equal(verdict.proved, false);
  assert.match(verdict.detail, /no local mysql section/);
});

test('fence: a refused port with no server process is proved not running', async () => {
  const port = await closedPort();
  const fence = new LocalFence({ mysql: mysqlAt(port), escalate: 'none' });
  const verdict = await fence.fence();
  assert.equal(verdict.proved, true);
  assert.equal(verdict.how, 'not_running');
});

test('fence: escalation by service counts only when the stop worked and the port refuses', async () => {
  const port = await closedPort();
  const stopped = new LocalFence({
    mysql: mysqlAt(port),
    escalate: 'service',
    stopCommand: ['true'],
    open: accessDenied,
  });
  const ok = await stopped.fence();
  assert.equal(ok.proved, true, ok.detail);
  assert.equal(ok.how, 'stopped');

  const failing = new LocalFence({
    mysql: mysqlAt(port),
    escalate: 'service',
    stopCommand: ['false'],
    open: accessDenied,
  });
  const failed = await failing.fence();
  assert.equal(failed.proved, false);
  assert.match(failed.detail, /false failed/);

  // The stop command "worked" but something still accepts connections on the server's port.
  const listener = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const busyPort = (listener.address() as AddressInfo).port;
  try {
    const stillThere = new LocalFence({
      mysql: mysqlAt(busyPort),
      escalate: 'service',
      stopCommand: ['true'],
      open: accessDenied,
    });
    const verdict = await stillThere.fence();
    assert.equal(verdict.proved, false, verdict.detail);
    assert.match(verdict.detail, /still does not refuse/);
  } finally {
    listener.close();
  }
});

test('lease keeper: an unproved fence is retried until proved; the lease never reports fenced before', async () => {
  const verdicts: FenceVerdict[] = [
    { proved: false, how: 'unproved', detail: 'Access denied' },
    { proved: false, how: 'unproved', detail: 'Access denied' },
    { proved: true, how: 'stopped', detail: 'mariadbd killed and gone' },
  ];
  let attempts = 0;
  let wake: () => void = () => undefined;
  const lease = new LeaseKeeper({
    log: silentLogger,
    ping: async () => undefined,
    fence: async () => verdicts[Math.min(attempts++, verdicts.length - 1)] as FenceVerdict,
    sleep: () => new Promise<void>((resolve) => (wake = resolve)),
  });
  const first = await lease.release('failover away from db1');
  assert.equal(first.proved, false);
  assert.equal(lease.status().fenced, false, 'an unproved fence is never reported as fenced');
  assert.equal(lease.fenceStatus()?.proved, false);
  // "No longer the writer" from the manager does not end the retries.
  lease.configure(undefined);
  for (let round = 0; round < 2; round += 1) {
    await new Promise((resolve) => setImmediate(resolve));
    wake();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(attempts, 3);
  assert.equal(lease.status().fenced, true);
  assert.equal(lease.fenceStatus()?.how, 'stopped');
  assert.equal(lease.fenceStatus()?.attempts, 3);
  lease.stop();
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

test('lease/release answers fenced: false when the fence was not proved (agent without mysql)', async (t) => {
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
    driver: new NoVips(),
    getToken: () => 'release-token',
    logger: silentLogger,
    ping: async () => undefined,
  });
  const server = await listen(app, '127.0.0.1:0');
  t.after(() => {
    app.runtime.stop();
    server.close();
    server.closeAllConnections();
  });
  const response = await fetch(
    `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/lease/release`,
    {
      method: 'POST',
      headers: { authorization: 'Bearer release-token', 'content-type': 'application/json' },
      body: JSON.stringify({ seq: 1, reason: 'failover away from db1' }),
    },
  );
  const body = (await response.json()) as { fenced: boolean; how: string; detail: string };
  assert.equal(response.status, 200);
  assert.equal(body.fenced, false, body.detail);
  assert.equal(body.how, 'unproved');
  assert.match(body.detail, /no local mysql section/);
});

test('agent config: fence.escalate service needs a stop command', () => {
  const { problems } = validateAgentConfig(
    {
      listen: '127.0.0.1:0',
      auth: { token_env: 'T' },
      fence: { escalate: 'service' },
    },
    '/tmp/agent.yml',
  );
  assert.deepEqual(
    problems.map((problem) => problem.path),
    ['fence.stop'],
  );
  const defaults = validateAgentConfig(
    { listen: '127.0.0.1:0', auth: { token_env: 'T' } },
    '/tmp/agent.yml',
  );
  assert.equal(defaults.config?.fence.escalate, 'kill');
});
