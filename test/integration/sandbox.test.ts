import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { isPortFree } from '../../src/sandbox/ports.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

const run = promisify(execFile);
const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;

test('sandbox: master-master plus replica replicate in both directions, then down leaves nothing', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const db1 = sandbox.instance('db1');
  const db2 = sandbox.instance('db2');
  const db3 = sandbox.instance('db3');

  const readOnly = async (name: string) =>
    Number((await sandbox.instance(name).sql('SELECT @@read_only AS v'))[0]?.v);
  assert.deepEqual(
    [await readOnly('db1'), await readOnly('db2'), await readOnly('db3')],
    [0, 1, 1],
    'exactly the first master is writable',
  );

  await db1.sql('CREATE DATABASE app');
  await db1.sql('CREATE TABLE app.t (id INT PRIMARY KEY, origin VARCHAR(8))');
  await db1.sql("INSERT INTO app.t VALUES (1, 'db1')");
  for (const replica of [db2, db3]) {
    await waitFor(
      `row from db1 on ${replica.name}`,
      async () => (await replica.sql('SELECT origin FROM app.t WHERE id=1'))[0]?.origin === 'db1',
    );
  }

  // The other direction: make db2 the writer, as a switchover would, and write there.
  await db1.sql('SET GLOBAL read_only=ON');
  await db2.sql('SET GLOBAL read_only=OFF');
  await db2.sql("INSERT INTO app.t VALUES (2, 'db2')");
  await waitFor(
    'row from db2 on db1',
    async () => (await db1.sql('SELECT origin FROM app.t WHERE id=2'))[0]?.origin === 'db2',
  );
  await waitFor(
    'row from db2 on db3 through db1',
    async () => (await db3.sql('SELECT origin FROM app.t WHERE id=2'))[0]?.origin === 'db2',
  );

  const gtids = await Promise.all(
    [db1, db2, db3].map(
      async (instance) => (await instance.sql('SELECT @@gtid_current_pos AS g'))[0]?.g,
    ),
  );
  assert.equal(
    new Set(gtids).size,
    1,
    `every host at the same GTID position: ${gtids.join(' | ')}`,
  );

  const pids = [db1, db2, db3].map((instance) => instance.pid());
  const status = await run(process.execPath, [
    CLI,
    'sandbox',
    'status',
    '--dir',
    sandbox.dir,
    '--json',
  ]);
  const parsed = JSON.parse(status.stdout) as Array<{ name: string; running: boolean }>;
  assert.deepEqual(
    parsed.map((entry) => [entry.name, entry.running]),
    [
      ['db1', true],
      ['db2', true],
      ['db3', true],
    ],
  );

  await run(process.execPath, [CLI, 'sandbox', 'down', '--dir', sandbox.dir]);
  assert.equal(existsSync(sandbox.dir), false, 'directory removed');
  for (const pid of pids) {
    assert.ok(pid);
    assert.throws(() => process.kill(pid, 0), 'process gone');
  }
  for (const host of sandbox.manifest.hosts)
    assert.ok(await isPortFree(host.port), `port ${host.port} released`);
});

test('sandbox up refuses an existing directory and a taken port, with reasons', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 1, replicas: 0 });
  const again = await run(process.execPath, [CLI, 'sandbox', 'up', '--dir', sandbox.dir]).catch(
    (error) => error,
  );
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists/);
  const port = sandbox.manifest.hosts[0]?.port;
  const taken = await run(process.execPath, [
    CLI,
    'sandbox',
    'up',
    '--dir',
    `${sandbox.dir}-2`,
    '--base-port',
    String(port),
  ]).catch((error) => error);
  assert.equal(taken.code, 1);
  assert.match(taken.stderr, new RegExp(`port ${port} on 127.0.0.1 is taken`));
  assert.equal(existsSync(`${sandbox.dir}-2`), false, 'nothing created for a refused sandbox');
  const notSandbox = await run(process.execPath, [CLI, 'sandbox', 'down', '--dir', '/tmp']).catch(
    (error) => error,
  );
  assert.equal(notSandbox.code, 1);
  assert.match(notSandbox.stderr, /not a sandbox/);
});

test('sandbox stop, kill and start one host: clean stop, SIGKILL, restart read_only=ON with its data; wrong requests refused', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 1, replicas: 0 });
  const db1 = sandbox.instance('db1');
  const cli = (...args: string[]) =>
    run(process.execPath, [CLI, 'sandbox', ...args, '--dir', sandbox.dir]).then(
      (result) => ({ code: 0, ...result }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
  const readOnly = async () => Number((await db1.sql('SELECT @@read_only AS v'))[0]?.v);
  assert.equal(await readOnly(), 0, 'the sandbox made db1 writable');
  await db1.sql('CREATE DATABASE survives');

  const unknown = await cli('stop', 'db9');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no host "db9" .*hosts: db1/);
  const missing = await cli('kill');
  assert.equal(missing.code, 2, 'a missing host name is a usage error');
  const twice = await cli('start', 'db1');
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /db1 is already running/);

  const firstPid = db1.pid();
  const stopped = await cli('stop', 'db1');
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.ok(firstPid);
  assert.throws(() => process.kill(firstPid, 0), 'mariadbd exited');
  assert.match(
    (await readFile(db1.errorLog, 'utf8')).split('\n').slice(-30).join('\n'),
    /Shutdown complete/,
    'a clean shutdown, not a crash',
  );
  for (const action of ['stop', 'kill']) {
    const notRunning = await cli(action, 'db1');
    assert.equal(notRunning.code, 1, action);
    assert.match(notRunning.stderr, /db1 is not running/);
  }

  const started = await cli('start', 'db1');
  assert.equal(started.code, 0, started.stderr);
  assert.match(started.stdout, /db1 running again/);
  assert.equal(await readOnly(), 1, 'its my.cnf brings it back read-only');
  assert.equal((await db1.sql("SHOW DATABASES LIKE 'survives'")).length, 1, 'same datadir');

  const secondPid = db1.pid();
  const killed = await cli('kill', 'db1');
  assert.equal(killed.code, 0, killed.stderr);
  assert.ok(secondPid);
  assert.throws(() => process.kill(secondPid, 0), 'mariadbd killed');
  assert.equal(db1.pid(), secondPid, 'kill -9 leaves the stale pid file behind');
  const restarted = await cli('start', 'db1');
  assert.equal(restarted.code, 0, restarted.stderr);
  assert.notEqual(db1.pid(), secondPid);
  assert.equal(await readOnly(), 1);
});
