import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { waitFor } from '../support/sandbox.js';

const run = promisify(execFile);
const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;

async function cli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

test('switchyard agent --check validates an agent file: 0 when valid, 2 with key paths when not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-agent-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'token'), 'tok\n', { mode: 0o600 });
  const good = join(dir, 'agent.yml');
  writeFileSync(
    good,
    'listen: 127.0.0.1:9106\nauth: { token_file: token }\nvip: { interface: lo, ips: [127.0.1.100] }\nsnapshot: { method: mariabackup, path: /var/lib/mysql }\n',
  );
  const ok = await cli(['agent', '--check', '-c', good]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(
    ok.stdout,
    /ok\n {2}listen 127\.0\.0\.1:9106, vip lo \[127\.0\.1\.100\], snapshot mariabackup/,
  );
  // Valid, but without a mysql section a cut-off writer's agent cannot set read_only: said.
  assert.match(ok.stdout, /warning: fence: no mysql section: .*read_only cannot be set/);

  // A mysql section whose login cannot work (nothing listens there) fails the check: the fence
  // would not work when it is needed.
  writeFileSync(join(dir, 'mysql.pass'), 'x\n', { mode: 0o600 });
  const unfenceable = join(dir, 'unfenceable.yml');
  writeFileSync(
    unfenceable,
    'listen: 127.0.0.1:9106\nauth: { token_file: token }\nmysql: { address: 127.0.0.1, port: 1, user: switchyard, password_file: mysql.pass }\n',
  );
  const notReady = await cli(['agent', '--check', '-c', unfenceable]);
  assert.equal(notReady.code, 1, notReady.stdout);
  assert.match(notReady.stdout, /FENCE NOT READY/);
  assert.match(notReady.stdout, /fence: NOT READY: cannot log in as switchyard: .*ECONNREFUSED/);

  const warned = join(dir, 'warned.yml');
  writeFileSync(
    warned,
    'listen: 127.0.0.1:9106\nauth: { token_file: missing-token }\nvip: { interface: nosuchif0, ips: [127.0.1.100] }\n',
  );
  const warnings = await cli(['agent', '--check', '-c', warned]);
  assert.equal(warnings.code, 0, 'valid file, but this machine cannot run it as-is: warnings');
  assert.match(warnings.stdout, /warning: agent auth token: cannot read .*missing-token/);
  assert.match(warnings.stdout, /warning: interface nosuchif0/);

  const bad = join(dir, 'bad.yml');
  writeFileSync(
    bad,
    'listen: nowhere\nauth: {}\nvip: { interface: eth0, ips: [10.0.0.300] }\nextra: 1\n',
  );
  const refused = await cli(['agent', '--check', '-c', bad]);
  assert.equal(refused.code, 2);
  for (const expected of [
    /listen: must be HOST:PORT/,
    /auth\.token_file: set token_file or token_env/,
    /vip\.ips\[0\]: must be an IPv4 address/,
    /extra: unknown key/,
  ]) {
    assert.match(refused.stderr, expected);
  }
  const missing = await cli(['agent', '--check', '-c', join(dir, 'nope.yml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read/);
});

test('switchyard agent serves, refuses to start on a missing interface, and stops on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-agent-run-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const broken = join(dir, 'broken.yml');
  writeFileSync(
    broken,
    'listen: 127.0.0.1:0\nauth: { token_env: SWITCHYARD_AGENT_TEST_TOKEN }\nvip: { interface: nosuchif0, ips: [127.0.1.100] }\n',
  );
  const env = { ...process.env, SWITCHYARD_AGENT_TEST_TOKEN: 'tok' };
  const failed = await cli(['agent', '-c', broken], env);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /agent failed to start: .*nosuchif0/);

  const file = join(dir, 'agent.yml');
  writeFileSync(
    file,
    'listen: 127.0.0.1:0\nauth: { token_env: SWITCHYARD_AGENT_TEST_TOKEN }\nvip: { interface: lo, ips: [127.0.1.100] }\n',
  );
  const child = spawn(process.execPath, [CLI, 'agent', '-c', file], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await waitFor(
    'agent.started',
    async () => /"event":"agent\.started","url":"([^"]+)"/.exec(output)?.[1],
    20_000,
  );
  const list = await fetch(`${url}/api/v1/vips`, { headers: { authorization: 'Bearer tok' } });
  assert.equal(list.status, 200);
  assert.deepEqual(((await list.json()) as { held: unknown[] }).held, []);
  assert.equal((await fetch(`${url}/api/v1/vips`)).status, 401);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.match(output, /"event":"agent\.stopping"/);
  assert.match(
    output,
    /"event":"agent\.request","method":"GET","path":"\/api\/v1\/vips","status":401/,
  );
});
