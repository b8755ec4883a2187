import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readSecret } from '../../src/config/secrets.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, writeTestConfig } from '../support/daemon.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;

function startManager(configFile: string, logFile: string): ChildProcess {
  const log = openSync(logFile, 'a');
  return spawn(process.execPath, [CLI, 'run', '-c', configFile], { stdio: ['ignore', log, log] });
}

test('the manager killed in the middle of a switchover and restarted leaves exactly one writer', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const config = writeTestConfig(sandbox, 'restart.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
    raw.listen = `127.0.0.1:${sandbox.listenPort}`;
    raw.actuator = { catchup_timeout: '20s' };
  });
  const token = readSecret({ file: config.auth.token_file }, 'token');
  const api = (method: string, path: string, body?: unknown) =>
    fetch(`http://127.0.0.1:${sandbox.listenPort}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
  const logFile = join(sandbox.dir, 'manager.log');
  let manager = startManager(config.source, logFile);
  t.after(() => manager.kill('SIGKILL'));
  await waitFor('the manager to assign the writer role', async () => {
    const response = await api('GET', '/status');
    return (
      response.ok &&
      ((await response.json()) as { roles: Record<string, Record<string, string>> }).roles.writer?.[
        '127.0.1.100'
      ] === 'db1'
    );
  });

  // db2 cannot catch up while its SQL thread is stopped, so the switchover sits in its wait.
  const db1 = sandbox.instance('db1');
  const db2 = sandbox.instance('db2');
  await db2.sql('STOP SLAVE SQL_THREAD');
  await db1.sql('CREATE DATABASE app');
  const move = api('POST', '/roles/writer/move', { host: 'db2', force: false }).catch(
    () => undefined,
  );
  await waitFor(
    'db1 to be fenced',
    async () => Number((await db1.sql('SELECT @@read_only AS ro'))[0]?.ro) === 1,
  );
  manager.kill('SIGKILL');
  await move;
  t.diagnostic('manager killed while the old writer was fenced and the target was catching up');
  const readOnly = async () =>
    Promise.all(
      ['db1', 'db2', 'db3'].map(async (name) =>
        Number((await sandbox.instance(name).sql('SELECT @@read_only AS ro'))[0]?.ro),
      ),
    );
  t.diagnostic(`read_only after the kill (db1, db2, db3): ${(await readOnly()).join(', ')}`);

  await db2.sql('START SLAVE SQL_THREAD');
  manager = startManager(config.source, logFile);
  const settled = await waitFor(
    'exactly one writable host after the restart',
    async () => {
      const values = await readOnly();
      return values.filter((value) => value === 0).length === 1 ? values : undefined;
    },
    30_000,
  );
  t.diagnostic(`read_only after the restart (db1, db2, db3): ${settled.join(', ')}`);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const final = await readOnly();
  assert.equal(
    final.filter((value) => value === 0).length,
    1,
    `exactly one writer: ${final.join(', ')}`,
  );
  const response = await api('GET', '/status');
  const status = (await response.json()) as { roles: Record<string, Record<string, string>> };
  const writer = status.roles.writer?.['127.0.1.100'];
  assert.equal(
    final[['db1', 'db2', 'db3'].indexOf(writer as string)],
    0,
    `the writable host (${final.join(', ')}) is the one holding the writer role (${writer})`,
  );
});
