import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { startSandbox } from '../support/sandbox.js';

const run = promisify(execFile);
const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;

async function check(file: string): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [CLI, 'config', 'check', '-c', file, '--live']);
    return { code: 0, stdout };
  } catch (error) {
    const failure = error as { code: number; stdout: string };
    return { code: failure.code, stdout: failure.stdout };
  }
}

test('config check --live warns about agentless replicas with a slow slave_net_timeout, gtid_strict_mode=OFF and unreachable hosts', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const file = sandbox.manifest.configFile;

  // MariaDB's default slave_net_timeout is 60 s and the sandbox runs no agents.
  let result = await check(file);
  assert.equal(result.code, 0, 'warnings do not fail the check');
  for (const host of ['db2', 'db3'])
    assert.match(
      result.stdout,
      new RegExp(`warning: ${host} has no agent and slave_net_timeout=60s`),
    );

  assert.doesNotMatch(result.stdout, /gtid_strict_mode/, 'the sandbox runs gtid_strict_mode=ON');

  await sandbox.instance('db2').sql('SET GLOBAL gtid_strict_mode = OFF');
  await sandbox.instance('db2').sql('SET GLOBAL slave_net_timeout = 5');
  await sandbox.instance('db3').stop();
  result = await check(file);
  assert.equal(result.code, 0);
  assert.doesNotMatch(result.stdout, /db2 has no agent/, 'a short timeout is fine');
  assert.match(result.stdout, /warning: db2 runs with gtid_strict_mode=OFF/);
  assert.match(
    result.stdout,
    /warning: hosts\.db3: cannot check 127\.0\.0\.1:\d+ as \w+ \(.*ECONNREFUSED/,
  );

  // Without --live nothing connects: no host warnings.
  const { stdout } = await run(process.execPath, [CLI, 'config', 'check', '-c', file]);
  assert.doesNotMatch(stdout, /slave_net_timeout|cannot check/);
});
