import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createEtcdClient } from '../../src/ha/etcd-client.js';
import { EtcdLeadership } from '../../src/ha/etcd-leadership.js';
import { EtcdStateStore, FencedWriteError } from '../../src/ha/etcd-store.js';
import { termOf, TermSequence } from '../../src/domain/fencing.js';
import type { ClusterState } from '../../src/domain/cluster-state.js';
import { silentLogger } from '../../src/log.js';
import { requireBinaries } from '../support/binaries.js';
import { ETCD, startTestEtcd } from '../support/etcd.js';
import { waitFor } from '../support/sandbox.js';
import { OPENSSL, makeTestCa } from '../support/test-ca.js';

const LEASE_MS = 2000;

function manager(t: { after(fn: () => unknown): void }, endpoints: string[], id: string) {
  const client = createEtcdClient({ endpoints, prefix: '/switchyard-test', timeout: 500 });
  const leadership = new EtcdLeadership({
    client,
    prefix: '/switchyard-test',
    cluster: 'c1',
    leaseMs: LEASE_MS,
    timeoutMs: 500,
    id,
    url: `http://${id}`,
    log: silentLogger,
  });
  const store = new EtcdStateStore({
    client,
    cluster: 'c1',
    leadership,
    timeoutMs: 500,
    log: silentLogger,
  });
  t.after(async () => {
    await leadership.stop();
    client.close();
  });
  return { client, leadership, store };
}

function state(note: string): ClusterState {
  return {
    version: 1,
    cluster: 'c1',
    mode: 'active',
    modeReason: note,
    hosts: {},
    roles: { writer: { '10.0.0.100': 'db1' } },
    updatedAt: Date.now(),
  };
}

test(
  'etcd leadership: one leader per term, a deposed leader cannot write, an unreachable etcd ends leadership within the lease',
  { timeout: 120_000 },
  async (t) => {
    if (!requireBinaries(t, ETCD)) return;
    const etcd = await startTestEtcd(t);
    const a = manager(t, etcd.endpoints, 'a');
    const b = manager(t, etcd.endpoints, 'b');
    await a.leadership.start();
    await b.leadership.start();
    await waitFor('a to lead', async () => a.leadership.mayAct(), 10_000, 50);
    await waitFor('b to see a lead', async () => b.leadership.leader()?.id === 'a', 10_000, 50);
    assert.equal(b.leadership.mayAct(), false, 'exactly one manager may act');
    const termA = a.leadership.term() as number;

    // Only the leader writes; a follower's save is dropped, its load sees the leader's state.
    assert.equal(await a.store.load(), undefined);
    await a.store.save(state('from a'));
    await b.store.save(state('from b (follower: dropped)'));
    assert.equal((await b.store.load())?.modeReason, 'from a');

    // a stops (graceful: lease revoked): b wins a higher term.
    const stoppedAt = Date.now();
    await a.leadership.stop();
    await waitFor('b to lead', async () => b.leadership.mayAct(), 10_000, 20);
    console.log(`# b leads ${Date.now() - stoppedAt} ms after a stopped`);
    const termB = b.leadership.term() as number;
    assert.ok(termB > termA, `term ${termB} > ${termA}`);
    const seqA = new TermSequence();
    const seqB = new TermSequence();
    for (let i = 0; i < 1000; i++) seqA.next(termA);
    assert.ok(
      (seqB.next(termB) as number) > (seqA.next(termA) as number),
      "the new leader's first sequence number outranks all of the old leader's",
    );
    assert.equal(termOf(seqB.next(termB) as number), termB);

    // A write with a term that is over fails, and the writer stops acting.
    await b.store.load();
    await b.store.save(state('from b'));
    await b.client.put(b.leadership.termKey).value(String(termB + 1)); // as if another manager had won
    await assert.rejects(b.store.save(state('stale')), FencedWriteError);
    assert.equal(b.leadership.mayAct(), false, 'deposed on a refused write');
    assert.equal((await b.store.load())?.modeReason, 'from b');

    // b leads again (new term); then every etcd member dies: b stops acting within the lease.
    await b.client.delete().key(b.leadership.termKey.replace(/term$/, 'leader'));
    await waitFor('b to lead again', async () => b.leadership.mayAct(), 10_000, 20);
    assert.ok((b.leadership.term() as number) > termB + 1);
    const cutAt = Date.now();
    await etcd.stop();
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS));
    assert.equal(
      b.leadership.mayAct(),
      false,
      'no manager acts once its lease cannot have been renewed for `lease`',
    );
    console.log(
      `# b stopped acting at most ${Date.now() - cutAt} ms after etcd became unreachable (lease ${LEASE_MS} ms)`,
    );
  },
);

test(
  'etcd over TLS with client certificates: a manager with ha.etcd.ca_file/cert_file/key_file leads; one without a client certificate cannot',
  { timeout: 120_000 },
  async (t) => {
    if (!requireBinaries(t, [...ETCD, ...OPENSSL])) return;
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-etcd-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const ca = await makeTestCa(dir, 'etcd');
    const server = await ca.issue('etcd-server');
    const client = await ca.issue('manager');
    const etcd = await startTestEtcd(t, 1, { cert: server.cert, key: server.key, ca: ca.cert });
    assert.match(etcd.endpoints[0] as string, /^https:/);
    const make = (
      id: string,
      files: { ca_file: string; cert_file?: string; key_file?: string },
    ) => {
      const etcdClient = createEtcdClient({
        endpoints: etcd.endpoints,
        prefix: '/switchyard-tls',
        timeout: 500,
        ...files,
      });
      const leadership = new EtcdLeadership({
        client: etcdClient,
        prefix: '/switchyard-tls',
        cluster: 'c1',
        leaseMs: LEASE_MS,
        timeoutMs: 500,
        id,
        url: `http://${id}`,
        log: silentLogger,
      });
      t.after(async () => {
        await leadership.stop();
        etcdClient.close();
      });
      return leadership;
    };
    const anonymous = make('anonymous', { ca_file: ca.cert });
    await anonymous.start();
    const withCert = make('with-cert', {
      ca_file: ca.cert,
      cert_file: client.cert,
      key_file: client.key,
    });
    await withCert.start();
    await waitFor(
      'the manager with a client certificate to lead',
      async () => withCert.mayAct(),
      10_000,
      50,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(anonymous.mayAct(), false);
    assert.match(
      anonymous.describe(),
      /etcd unreachable/,
      'without a client certificate etcd refuses it',
    );
  },
);

test(
  'etcd with password authentication: ha.etcd.username + password_file lead within a prefix the user may write; a wrong password cannot',
  { timeout: 120_000 },
  async (t) => {
    if (!requireBinaries(t, [...ETCD, ['etcdctl', 'etcd-client']])) return;
    const etcd = await startTestEtcd(t, 1);
    const endpoint = etcd.endpoints[0] as string;
    // Passwords go to etcdctl on stdin, never on its command line.
    const etcdctl = (args: string[], input?: string) =>
      new Promise<void>((resolve, reject) => {
        const child = execFile(
          'etcdctl',
          ['--endpoints', endpoint, ...args],
          (error, _stdout, stderr) =>
            error ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr}`)) : resolve(),
        );
        child.stdin?.end(input ?? '');
      });
    await etcdctl(['user', 'add', 'root', '--interactive=false'], 'root-secret\n');
    await etcdctl(['user', 'grant-role', 'root', 'root']);
    await etcdctl(['user', 'add', 'switchyard', '--interactive=false'], 'switchyard-secret\n');
    await etcdctl(['role', 'add', 'switchyard']);
    await etcdctl([
      'role',
      'grant-permission',
      'switchyard',
      'readwrite',
      '--prefix=true',
      '/switchyard-auth/',
    ]);
    await etcdctl(['user', 'grant-role', 'switchyard', 'switchyard']);
    await etcdctl(['auth', 'enable']);
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-etcd-auth-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'good.pass'), 'switchyard-secret\n', { mode: 0o600 });
    writeFileSync(join(dir, 'bad.pass'), 'wrong\n', { mode: 0o600 });
    const make = (id: string, passwordFile: string) => {
      const etcdClient = createEtcdClient({
        endpoints: etcd.endpoints,
        prefix: '/switchyard-auth',
        timeout: 500,
        username: 'switchyard',
        password_file: passwordFile,
      });
      const leadership = new EtcdLeadership({
        client: etcdClient,
        prefix: '/switchyard-auth',
        cluster: 'c1',
        leaseMs: LEASE_MS,
        timeoutMs: 500,
        id,
        url: `http://${id}`,
        log: silentLogger,
      });
      const store = new EtcdStateStore({
        client: etcdClient,
        cluster: 'c1',
        leadership,
        timeoutMs: 500,
        log: silentLogger,
      });
      t.after(async () => {
        await leadership.stop();
        etcdClient.close();
      });
      return { leadership, store };
    };
    const wrong = make('wrong', join(dir, 'bad.pass'));
    await wrong.leadership.start();
    const right = make('right', join(dir, 'good.pass'));
    await right.leadership.start();
    await waitFor(
      'the manager with the right password to lead',
      async () => right.leadership.mayAct(),
      10_000,
      50,
    );
    await right.store.save(state('with a password'));
    assert.equal((await right.store.load())?.modeReason, 'with a password');
    assert.equal(wrong.leadership.mayAct(), false);
    assert.match(wrong.leadership.describe(), /etcd unreachable/);
  },
);

test(
  "a leader partitioned from etcd: another leads, and the old one's pending agent request (its sequence number taken while it led) is refused 409 stale by the real agent",
  { timeout: 120_000 },
  async (t) => {
    if (!requireBinaries(t, ETCD)) return;
    const { validateAgentConfig } = await import('../../src/agent/config.js');
    const { createAgentApp } = await import('../../src/agent/server.js');
    const { listen } = await import('../../src/api/server.js');
    const { VipActions } = await import('../../src/actuator/vip-actions.js');
    const { StepRecorder } = await import('../../src/actuator/recorder.js');
    const { AgentError } = await import('../../src/actuator/agent-client.js');
    const { startCuttableProxy } = await import('../support/etcd.js');
    const etcd = await startTestEtcd(t);

    // A real agent (HTTP API, sequence guard), with an in-memory interface.
    const token = 'fencing-test-token';
    const held = new Set<string>();
    const { config: agentConfig } = validateAgentConfig(
      {
        listen: '127.0.0.1:0',
        auth: { token_env: 'UNUSED' },
        vip: { interface: 'eth0', ips: ['10.9.9.100', '10.9.9.101'] },
      },
      '/tmp/agent.yml',
    );
    const app = createAgentApp({
      config: agentConfig as NonNullable<typeof agentConfig>,
      driver: {
        list: async () => [...held].map((ip) => ({ ip, prefix: 24 })),
        add: async (ip: string) => void held.add(ip),
        remove: async (ip: string) => void held.delete(ip),
        announce: async () => 'sent',
      },
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
      ping: async () => {
        throw new Error('unreachable');
      },
    });
    const server = await listen(app, '127.0.0.1:0');
    t.after(() => {
      app.runtime.stop();
      server.close();
      server.closeAllConnections();
    });
    const agentUrl = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;

    // Manager a reaches etcd through proxies the test cuts; manager b directly.
    const proxies = await Promise.all(
      etcd.endpoints.map((endpoint) => startCuttableProxy(t, endpoint)),
    );
    const managerFor = (id: string, endpoints: string[]) => {
      const { leadership } = manager(t, endpoints, id);
      const vips = new VipActions({
        agents: { db1: agentUrl },
        interface: 'eth0',
        prefix: 24,
        token: () => token,
        timeoutMs: 2000,
        retries: 0,
        recorder: new StepRecorder({ dryRun: false }),
        fencingToken: () => leadership.term(),
      });
      return { leadership, vips };
    };
    const a = managerFor(
      'a',
      proxies.map((proxy) => proxy.url),
    );
    await a.leadership.start();
    await waitFor('a to lead', async () => a.leadership.mayAct(), 10_000, 50);
    const b = managerFor('b', etcd.endpoints);
    await b.leadership.start();
    const request = (seq: number, vips: string[]) => ({
      seq,
      host: 'db1',
      prefix: 24,
      vips,
      interval_ms: 200,
    });
    await a.vips.sync('db1', request(a.vips.nextSeq(), ['10.9.9.100']), 2000);
    assert.deepEqual([...held], ['10.9.9.100']);
    // a takes the number for its next change, then is cut off before sending it (a pause, a slow network).
    const pending = a.vips.nextSeq();
    for (const proxy of proxies) proxy.cut();
    await waitFor('b to lead', async () => b.leadership.mayAct(), 20_000, 50);
    assert.equal(a.leadership.mayAct(), false, 'a stopped acting before b could lead');
    assert.throws(() => a.vips.nextSeq(), /not the leader/, 'a takes no new sequence numbers');
    await b.vips.sync('db1', request(b.vips.nextSeq(), ['10.9.9.101']), 2000);
    assert.deepEqual([...held], ['10.9.9.101']);
    // a's pending request arrives now: refused, and nothing changes.
    await assert.rejects(
      a.vips.sync('db1', request(pending, ['10.9.9.100']), 2000),
      (error: unknown) =>
        error instanceof AgentError && error.status === 409 && error.code === 'stale',
    );
    assert.deepEqual([...held], ['10.9.9.101']);
  },
);
