import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';

const run = promisify(execFile);
const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;
const VALID = new URL('../fixtures/valid.yml', import.meta.url).pathname;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

test('a secret file readable by group or others: config check, run and agent refuse, naming the file and the chmod', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-secret-files-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of ['mysql.pass', 'repl.pass', 'token', 'am.token'])
    writeFileSync(join(dir, name), 'secret-value\n', { mode: 0o600 });
  const raw = yaml.load(readFileSync(VALID, 'utf8')) as Record<string, any>;
  raw.mysql.password_file = 'mysql.pass';
  raw.mysql.replication_password_file = 'repl.pass';
  raw.auth = {
    token_file: 'token',
    tokens: [{ name: 'am', file: 'am.token', scopes: ['alerts'] }],
  };
  raw.listen = '127.0.0.1:0';
  raw.state_dir = join(dir, 'state');
  const file = join(dir, 'switchyard.yml');
  writeFileSync(file, yaml.dump(raw));
  const agentFile = join(dir, 'agent.yml');
  writeFileSync(agentFile, yaml.dump({ listen: '127.0.0.1:0', auth: { token_file: 'token' } }));

  const clean = await cli(['config', 'check', '-c', file]);
  assert.equal(clean.code, 0, clean.stderr);
  assert.doesNotMatch(clean.stdout, /warning/);
  writeFileSync(
    file,
    yaml.dump({ ...raw, mysql: { ...raw.mysql, tls: { ca_file: 'missing-ca.crt' } } }),
  );
  const missingCa = await cli(['config', 'check', '-c', file]);
  assert.equal(missingCa.code, 0, 'valid, but this machine cannot run it as-is: a warning');
  assert.match(
    missingCa.stdout,
    /warning: mysql\.tls\.ca_file: cannot read .*missing-ca\.crt \(ENOENT\)/,
  );
  writeFileSync(file, yaml.dump(raw));

  chmodSync(join(dir, 'am.token'), 0o644);
  const amToken = join(dir, 'am.token');
  const checked = await cli(['config', 'check', '-c', file]);
  assert.equal(checked.code, 2);
  assert.ok(
    checked.stderr.includes(
      `auth.tokens[0].file: ${amToken} has mode 0644: group or others can read it; run chmod 600 ${amToken}`,
    ),
    checked.stderr,
  );

  const started = await cli(['run', '-c', file]);
  assert.equal(started.code, 1, 'run refuses to start');
  assert.ok(started.stderr.includes(`chmod 600 ${amToken}`), started.stderr);
  assert.doesNotMatch(
    started.stderr + started.stdout,
    /secret-value/,
    'the refusal does not show the secret',
  );

  chmodSync(join(dir, 'am.token'), 0o600);
  chmodSync(join(dir, 'token'), 0o640);
  const token = join(dir, 'token');
  const agent = await cli(['agent', '-c', agentFile]);
  assert.equal(agent.code, 2, 'the agent refuses to start');
  assert.ok(
    agent.stderr.includes(
      `auth.token_file: ${token} has mode 0640: group or others can read it; run chmod 600 ${token}`,
    ),
    agent.stderr,
  );
  const manager = await cli(['config', 'check', '-c', file]);
  assert.ok(manager.stderr.includes(`auth.token_file: ${token} has mode 0640`), manager.stderr);
});
