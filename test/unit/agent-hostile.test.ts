/**
 * An agent token in hostile hands (issue 23): one request must not lock the manager out, fence
 * the writer unordered, or make the agent send its token or open connections where it is told.
 */
import assert from 'node:assert/strict';
import { MemoryVipDriver, serveAgent } from '../support/memory-agent.js';
import { test, type TestContext } from 'node:test';
import { validateAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import { MAX_SEQUENCE_AHEAD, MAX_SEQUENCE_STEP, SequenceGuard } from '../../src/agent/mutex.js';
import { createAgentApp } from '../../src/agent/server.js';
import { TermSequence, nextTerm } from '../../src/domain/fencing.js';
import { silentLogger } from '../../src/log.js';

const TOKEN = 'hostile-agent-token';
const VIPS = ['10.9.9.100', '10.9.9.101'];
const PEERS = {
  db1: { agent: 'http://10.9.9.11:9106' },
  db2: { agent: 'http://10.9.9.12:9106' },
  db3: { agent: 'https://agent3.example:9443', address: '10.9.9.13' },
};

async function agent(t: TestContext, extra: Record<string, unknown> = {}) {
  const { config, problems } = validateAgentConfig(
    {
      listen: '127.0.0.1:0',
      auth: { token_env: 'UNUSED_TOKEN' },
      vip: { interface: 'eth0', ips: VIPS },
      ...extra,
    },
    '/tmp/agent.yml',
  );
  assert.deepEqual(problems, []);
  const driver = new MemoryVipDriver();
  const pinged: string[] = [];
  const probed: string[] = [];
  const app = createAgentApp({
    config: config as AgentConfig,
    driver,
    getToken: () => TOKEN,
    logger: silentLogger,
    probe: async (target) => {
      probed.push(`${target.address}:${target.port}`);
      return {
        target: target.host,
        ok: true,
        refused: false,
        detail: 'greeting',
        startedAt: Date.now(),
        finishedAt: Date.now(),
      };
    },
    ping: async (url) => {
      pinged.push(url);
    },
  });
  const url = await serveAgent(t, app);
  const post = async (path: string, body: Record<string, unknown>) => {
    const response = await fetch(`${url}/api/v1${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const sync = (body: Record<string, unknown>) =>
    post('/sync', { host: 'db1', interval_ms: 200, prefix: 24, vips: [], ...body });
  return { driver, post, sync, pinged, probed };
}

const clockSeq = () => Date.now() * 1000;

test('a sequence number far above the last one is refused and does not lock the manager out', async (t) => {
  const { sync, driver } = await agent(t);
  assert.equal((await sync({ seq: clockSeq(), vips: ['10.9.9.100'] })).status, 200);
  const forged = await sync({ seq: Number.MAX_SAFE_INTEGER, vips: [] });
  assert.equal(forged.status, 409, JSON.stringify(forged.body));
  assert.equal(forged.body.error, 'sequence_too_far');
  assert.deepEqual(
    driver.held.map((address) => address.ip),
    ['10.9.9.100'],
    'the forged request changed nothing',
  );
  // The manager's next request (its clock a moment later) is still accepted.
  const next = await sync({ seq: clockSeq(), vips: ['10.9.9.100', '10.9.9.101'] });
  assert.equal(next.status, 200, JSON.stringify(next.body));
  // Repeating bounded steps cannot climb past the clock's ceiling either.
  let climbed = clockSeq();
  for (let step = 0; step < 40; step++) {
    climbed += MAX_SEQUENCE_STEP;
    const answer = await sync({ seq: climbed, vips: ['10.9.9.100', '10.9.9.101'] });
    if (answer.status !== 200) {
      assert.equal(answer.body.error, 'sequence_too_far');
      break;
    }
  }
  assert.ok(climbed <= clockSeq() + MAX_SEQUENCE_AHEAD + MAX_SEQUENCE_STEP);
});

test('the sequence guard: a new leader term and a manager restart pass, a jump beyond the bounds does not', () => {
  let now = 1_800_000_000_000_000;
  const guard = new SequenceGuard(() => now);
  assert.equal(guard.admit(now - 5_000_000), undefined, 'a first number behind the clock');
  const term = nextTerm(0, now / 1000);
  const leader = new TermSequence();
  assert.equal(guard.admit(leader.next(term)), undefined, 'the first HA leader');
  assert.equal(guard.admit(leader.next(term + 3)), undefined, 'a leader three terms later');
  assert.equal(guard.admit(guard.current + MAX_SEQUENCE_STEP + 1)?.code, 'sequence_too_far');
  assert.equal(guard.admit(guard.current - 1)?.code, 'stale');
  now += 3_600_000_000; // an hour later, the clock moved on: so did the ceiling
  assert.equal(guard.admit(leader.next(term + 4)), undefined);
  const fresh = new SequenceGuard(() => now);
  assert.equal(fresh.admit(now + MAX_SEQUENCE_AHEAD + 1)?.code, 'sequence_too_far', 'fresh agent');
});

test('lease/release without a sequence number is refused and fences nothing', async (t) => {
  const { post } = await agent(t);
  const answer = await post('/lease/release', { reason: 'forged' });
  assert.equal(answer.status, 400, JSON.stringify(answer.body));
  assert.equal(answer.body.error, 'malformed');
});

test('with peers in its file, the agent pings, probes and pulls only from the peers it names', async (t) => {
  const { sync, post, pinged, probed } = await agent(t, { peers: PEERS });
  const lease = (voters: unknown[]) => ({
    duration_ms: 3000,
    voters,
    managers: 1,
    writer_vips: ['10.9.9.100'],
  });
  const writer = (host: string, address: string) => ({
    host,
    address,
    port: 3306,
    timeout_ms: 500,
  });

  const listener = await sync({
    seq: clockSeq(),
    lease: lease([{ host: 'db2', url: 'http://10.9.9.66:8080' }]),
  });
  assert.equal(listener.status, 403, JSON.stringify(listener.body));
  assert.equal(listener.body.error, 'peer_not_allowed');
  const stranger = await sync({
    seq: clockSeq(),
    lease: lease([{ host: 'db9', url: 'http://10.9.9.19:9106' }]),
  });
  assert.equal(stranger.status, 403);
  const inherited = await sync({
    seq: clockSeq(),
    lease: lease([{ host: 'constructor', url: 'http://10.9.9.19:9106' }]),
  });
  assert.equal(inherited.status, 403);
  const foreignWriter = await sync({ seq: clockSeq(), writer: writer('db2', '10.9.9.66') });
  assert.equal(foreignWriter.status, 403);
  assert.equal((await sync({ seq: clockSeq(), writer: writer('db7', '10.9.9.12') })).status, 403);

  // The peers as the file names them (any spelling of the same origin) are accepted.
  const good = await sync({
    seq: clockSeq(),
    vips: ['10.9.9.100'],
    lease: lease([
      { host: 'db2', url: 'http://10.9.9.12:9106/' },
      { host: 'db3', url: 'https://AGENT3.example:9443' },
    ]),
    writer: writer('db3', '10.9.9.13'),
  });
  assert.equal(good.status, 200, JSON.stringify(good.body));
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.ok(pinged.length > 0, 'the lease pinged its voters');
  for (const url of pinged) assert.doesNotMatch(url, /10\.9\.9\.66|10\.9\.9\.19/, url);
  for (const target of probed) assert.equal(target, '10.9.9.13:3306');

  const receive = await post('/transfers/receive', {
    id: 'copy-1',
    source_url: 'http://10.9.9.66:8080',
    token: 'x'.repeat(32),
    estimated_bytes: 1,
    writer: { host: 'db1', port: 3306 },
  });
  assert.equal(receive.status, 403, JSON.stringify(receive.body));
  const backup = await post('/backups/receive', {
    id: 'backup-1',
    host: 'db2',
    source_url: 'http://10.9.9.66:8080',
    token: 'x'.repeat(32),
    estimated_bytes: 1,
  });
  assert.equal(backup.status, 403, JSON.stringify(backup.body));
});

test('a wrong transfer token leaves the offer open; many wrong tokens are limited, the right one never', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { TransferSource } = await import('../../src/agent/transfer/source.js');
  const dir = mkdtempSync(join(tmpdir(), 'hostile-offer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const source = new TransferSource({
    datadir: dir,
    method: 'btrfs',
    server: { socket: join(dir, 'sock') } as never,
    log: silentLogger,
  });
  const offer = await source.offer('copy-1', undefined);
  assert.equal(source.claim('copy-1', 'f'.repeat(48)), 'refused');
  for (let attempt = 0; attempt < 20; attempt++) source.claim('copy-1', `wrong-${attempt}`);
  assert.equal(source.claim('copy-1', 'wrong-again'), 'limited');
  const claimed = source.claim('copy-1', offer.token);
  assert.equal(typeof claimed, 'object', 'the right token still takes the offer');
  assert.equal(source.claim('copy-1', offer.token), 'limited', 'used once');
});
