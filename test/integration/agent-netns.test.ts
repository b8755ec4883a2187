import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import * as yaml from 'js-yaml';
import { StepRecorder } from '../../src/actuator/recorder.js';
import { VipActions } from '../../src/actuator/vip-actions.js';
import { MemoryJournal } from '../../src/journal/journal.js';
import { openConnection } from '../../src/mysql/connect.js';
import { MariaDbInstance } from '../../src/sandbox/instance.js';
import { MARIADB, requireBinaries, requireRoot } from '../support/binaries.js';
import { createTestNetwork, type NetnsHost } from '../support/netns.js';
import { serverIdAt } from '../support/load.js';
import { waitFor } from '../support/sandbox.js';

const TOKEN = 'netns-agent-token';
const AGENT_PORT = 9106;
const MYSQL_PORT = 3306;

/** Runs `switchyard agent` inside the host's namespace, as it would run on a database host. */
async function spawnAgent(
  t: TestContext,
  host: NetnsHost,
  dir: string,
  ips: string[],
): Promise<{ url: string; output: string[] }> {
  const configFile = join(dir, `agent-${host.name}.yml`);
  writeFileSync(
    configFile,
    yaml.dump({
      listen: `${host.address}:${AGENT_PORT}`,
      auth: { token_file: join(dir, 'token') },
      vip: { interface: 'eth0', ips },
    }),
  );
  const command = [...host.wrap, process.execPath, 'bin/switchyard.js', 'agent', '-c', configFile];
  const child: ChildProcess = spawn(command[0] as string, command.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  t.after(() => {
    child.kill('SIGTERM');
  });
  const url = `http://${host.address}:${AGENT_PORT}`;
  await waitFor(`agent on ${host.name}`, async () => {
    if (child.exitCode !== null) throw new Error(`agent exited: ${output.join('')}`);
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(500) })).ok;
  });
  return { url, output };
}

async function startMariaDb(
  t: TestContext,
  host: NetnsHost,
  dir: string,
  serverId: number,
): Promise<MariaDbInstance> {
  const instance = new MariaDbInstance({
    name: host.name,
    dir: join(dir, `mysql-${host.name}`),
    port: MYSQL_PORT,
    serverId,
    bindAddress: '0.0.0.0',
    wrap: host.wrap,
  });
  t.after(() => instance.stop());
  await instance.initialize();
  await instance.start();
  await instance.sql('CREATE DATABASE app');
  await instance.sql('CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(40))');
  await instance.sql("CREATE USER app@'%' IDENTIFIED BY 'app-pass'");
  await instance.sql("GRANT SELECT, INSERT ON app.* TO app@'%'");
  return instance;
}

async function addresses(host: NetnsHost): Promise<string> {
  const { stdout } = await host.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0']);
  return stdout
    .split('\n')
    .map((line) => /inet (\S+)/.exec(line)?.[1])
    .filter(Boolean)
    .sort()
    .join(' ');
}

test('VIP moves between namespace hosts through real agents; clients follow; refusals change nothing', async (t) => {
  if (
    !requireRoot(t, 'network namespaces and ip addr') ||
    !requireBinaries(t, [['ip', 'iproute2'], ['arping', 'iputils-arping'], ...MARIADB])
  )
    return;
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-agent-netns-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  const network = await createTestNetwork(t, ['a', 'b']);
  const a = network.host('a');
  const b = network.host('b');
  const vip = network.vip(100);
  const otherVip = network.vip(101);

  const [mysqlA] = await Promise.all([startMariaDb(t, a, dir, 1), startMariaDb(t, b, dir, 2)]);
  await mysqlA.sql('SET GLOBAL read_only=OFF');
  const [agentA, agentB] = await Promise.all([
    spawnAgent(t, a, dir, [vip, otherVip]),
    spawnAgent(t, b, dir, [vip, otherVip]),
  ]);
  t.after(() => {
    // Agent logs are the evidence when this test fails.
    if (process.exitCode)
      t.diagnostic(`agent a:\n${agentA.output.join('')}\nagent b:\n${agentB.output.join('')}`);
  });

  const journal = new MemoryJournal();
  const vips = new VipActions({
    agents: { a: agentA.url, b: agentB.url },
    interface: 'eth0',
    prefix: 24,
    token: () => TOKEN,
    timeoutMs: 3000,
    retries: 1,
    recorder: new StepRecorder({ dryRun: false, journal }),
  });

  await t.test('writer VIP on A: a client outside writes through it to A', async () => {
    await vips.addVip('a', vip);
    assert.match(await addresses(a), new RegExp(`${vip.replaceAll('.', '\\.')}/24`));
    assert.deepEqual(await vips.listVips('a'), [vip]);
    const connection = await openConnection({
      host: vip,
      port: MYSQL_PORT,
      user: 'app',
      password: 'app-pass',
      database: 'app',
      connectTimeoutMs: 2000,
    });
    try {
      await connection.query("INSERT INTO t (note) VALUES ('through the VIP')");
      const [rows] = await connection.query('SELECT @@server_id AS id, COUNT(*) AS n FROM t');
      const [row] = rows as Array<{ id: unknown; n: unknown }>;
      assert.deepEqual(
        [Number(row?.id), Number(row?.n)],
        [1, 1],
        'server A answered and has the row',
      );
    } finally {
      connection.destroy();
    }
    const [count] = await mysqlA.sql('SELECT COUNT(*) AS n FROM app.t');
    assert.equal(Number(count?.n), 1, 'the row is on A');
  });

  await t.test(
    'move to B: the next connection through the VIP reaches B shortly after B replies',
    async () => {
      await vips.removeVip('a', vip);
      assert.doesNotMatch(await addresses(a), new RegExp(vip.replaceAll('.', '\\.')));
      await vips.addVip('b', vip);
      const replied = performance.now();
      let attempts = 0;
      const reached = await waitFor(
        'a connection through the VIP to reach B',
        async () => {
          attempts++;
          return (await serverIdAt(vip, { user: 'app', password: 'app-pass' }, 100)) === 2
            ? performance.now()
            : undefined;
        },
        10_000,
        5,
      );
      const elapsed = reached - replied;
      t.diagnostic(
        `VIP move: first connection through ${vip} reached B ${elapsed.toFixed(1)} ms after B's agent replied (${attempts} attempt(s))`,
      );
      assert.ok(elapsed < 1000, `reached B after ${elapsed.toFixed(1)} ms (target 200 ms)`);
      assert.deepEqual(await vips.listVips('a'), []);
      assert.deepEqual(await vips.listVips('b'), [vip]);
      await waitFor(
        'the gratuitous ARP to be logged',
        async () => agentB.output.join('').includes('"event":"vip.announced"'),
        5000,
      );
    },
  );

  await t.test(
    'the agent refuses bad requests with 4xx and a reason; nothing changes',
    async () => {
      const before = await addresses(b);
      const post = (path: string, body: string, headers: Record<string, string>) =>
        fetch(`${agentB.url}/api/v1${path}`, { method: 'POST', body, headers });
      const json = { 'content-type': 'application/json' };
      const cases: Array<[string, Promise<Response>, number]> = [
        ['no token', post('/vips/remove', JSON.stringify({ ip: vip }), json), 401],
        [
          'wrong token',
          post('/vips/remove', JSON.stringify({ ip: vip }), {
            ...json,
            authorization: 'Bearer wrong',
          }),
          401,
        ],
        [
          'IP outside its list',
          post('/vips/add', JSON.stringify({ ip: network.vip(150) }), {
            ...json,
            authorization: `Bearer ${TOKEN}`,
          }),
          403,
        ],
        [
          'interface outside its config',
          post('/vips/add', JSON.stringify({ ip: otherVip, interface: 'lo' }), {
            ...json,
            authorization: `Bearer ${TOKEN}`,
          }),
          403,
        ],
        [
          'malformed body',
          post('/vips/add', JSON.stringify({ address: otherVip }), {
            ...json,
            authorization: `Bearer ${TOKEN}`,
          }),
          400,
        ],
        [
          'broken JSON',
          post('/vips/add', '{"ip": ', { ...json, authorization: `Bearer ${TOKEN}` }),
          400,
        ],
      ];
      for (const [what, pending, status] of cases) {
        const response = await pending;
        const body = (await response.json()) as { error?: string; detail?: string };
        assert.equal(response.status, status, `${what}: ${JSON.stringify(body)}`);
        assert.ok(body.detail && body.detail.length > 0, `${what} gives a reason`);
        assert.equal(await addresses(b), before, `${what} changed nothing on B`);
        t.diagnostic(`${what}: ${response.status} ${body.error}: ${body.detail}`);
      }
      assert.equal(await addresses(a), a.address + '/24', 'A holds only its own address');
      const logged = agentB.output
        .join('')
        .split('\n')
        .filter((line) => line.includes('"event":"agent.request"'));
      assert.ok(
        logged.filter((line) => /"status":40[013]/.test(line)).length >= cases.length,
        'every refused request is logged',
      );
    },
  );
});
