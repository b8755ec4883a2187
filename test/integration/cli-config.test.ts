import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

test('config check: a valid file exits 0 with a summary', async () => {
  const result = await cli(['config', 'check', '-c', VALID]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /ok/);
  assert.match(result.stdout, /3 hosts/);
});

test('config check: a valid file without rules exits 0 and warns that alerts cannot act', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-config-'));
  const file = join(dir, 'no-rules.yml');
  const config = yaml.load(readFileSync(VALID, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, yaml.dump({ ...config, rules: [] }));
  const result = await cli(['config', 'check', '-c', file]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stdout,
    /warning: rules: none, so alerts from Alertmanager are received and journaled but never acted on/,
  );
});

test('config check: problems are printed with key paths and exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-config-'));
  const file = join(dir, 'bad.yml');
  writeFileSync(
    file,
    'cluster: x\nmysql: { user: a, replication_user: b, password_env: A, replication_password_env: B }\nhosts: { db1: { address: 1.2.3.4 } }\nroles: { writer: { exclusive: true, hosts: [db9] } }\nauth: { token_env: T }\nbogus: 1\n',
  );
  const result = await cli(['config', 'check', '-c', file]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /roles\.writer\.hosts\[0\]: unknown host "db9"/);
  assert.match(result.stderr, /bogus: unknown key/);
});

test('config check: missing file and usage errors exit 2', async () => {
  assert.equal((await cli(['config', 'check', '-c', '/nonexistent.yml'])).code, 2);
  assert.equal((await cli(['config', 'check'])).code, 2);
  assert.equal((await cli(['no-such-command'])).code, 2);
});

test('config example: the printed manager file passes config check unchanged', async () => {
  const example = await cli(['config', 'example']);
  assert.equal(example.code, 0, example.stderr);
  const file = join(mkdtempSync(join(tmpdir(), 'switchyard-config-')), 'switchyard.yml');
  writeFileSync(file, example.stdout);
  const result = await cli(['config', 'check', '-c', file]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /ok\n {2}cluster prod: 3 hosts/);
});

test('config example --fleet: the printed clusters: file passes config check unchanged, two clusters on one listener', async () => {
  const example = await cli(['config', 'example', '--fleet']);
  assert.equal(example.code, 0, example.stderr);
  assert.match(example.stdout, /^clusters:$/m);
  const file = join(mkdtempSync(join(tmpdir(), 'switchyard-config-')), 'fleet.yml');
  writeFileSync(file, example.stdout);
  const result = await cli(['config', 'check', '-c', file]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /cluster prod-a: 3 hosts/);
  assert.match(result.stdout, /cluster prod-b: 3 hosts/);
  // A process-level key is refused inside an entry when it differs from the top level's.
  writeFileSync(
    file,
    example.stdout.replace(
      '  - cluster: prod-b\n',
      '  - cluster: prod-b\n    listen: 0.0.0.0:9999\n',
    ),
  );
  const bad = await cli(['config', 'check', '-c', file]);
  assert.equal(bad.code, 2, bad.stdout);
  assert.match(bad.stderr, /listen/);
  const both = await cli(['config', 'example', '--fleet', '--agent']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /exclude each other/);
});

test('config example --agent: the printed agent file passes config check --agent unchanged', async () => {
  const example = await cli(['config', 'example', '--agent']);
  assert.equal(example.code, 0, example.stderr);
  const file = join(mkdtempSync(join(tmpdir(), 'switchyard-config-')), 'agent.yml');
  writeFileSync(file, example.stdout);
  const result = await cli(['config', 'check', '--agent', '-c', file]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /ok\n {2}agent: listen 10\.0\.0\.11:9106/);
  // An agent file with a problem is refused with its key path, as agent --check does.
  writeFileSync(file, example.stdout.replace('interface: eth0', 'interface: "eth 0"'));
  const bad = await cli(['config', 'check', '--agent', '-c', file]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /vip\.interface: must be a network interface name/);
});
