import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { findFreePortRange } from '../../src/sandbox/ports.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { waitFor } from '../support/sandbox.js';

const run = promisify(execFile);
const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;

interface ShownHost {
  name: string;
  state: string;
  held?: string;
  roles: Array<{ role: string; ip: string }>;
}

test('switchyard demo: sandbox, daemon, Prometheus and Alertmanager; the printed failover story works step by step from the CLI; Ctrl-C stops cleanly', async (t) => {
  if (
    !requireBinaries(t, [
      ...MARIADB,
      ['prometheus', 'prometheus'],
      ['prometheus-alertmanager', 'prometheus-alertmanager'],
    ])
  )
    return;
  const parent = mkdtempSync(join(tmpdir(), 'switchyard-demo-'));
  const dir = join(parent, 'sandbox');
  const base = await findFreePortRange(202);
  t.after(async () => {
    if (existsSync(join(dir, 'sandbox.json')))
      await run(process.execPath, [CLI, 'sandbox', 'down', '--dir', dir]).catch(() => undefined);
    rmSync(parent, { recursive: true, force: true });
  });
  const demo = spawn(process.execPath, [CLI, 'demo', '--dir', dir, '--base-port', String(base)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  demo.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  demo.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  t.after(() => demo.kill('SIGKILL'));
  await waitFor(
    'the demo to print the story',
    async () => output.includes('Ctrl-C stops the daemon'),
    60_000,
    200,
  );
  assert.match(output, /Prometheus: http:\/\/127\.0\.0\.1:\d+\/alerts/);

  // The story exactly as printed: "  N. npx switchyard ARGS   # note".
  const story = [...output.matchAll(/^ +(\d+)\. npx switchyard (.+?) +# /gm)].map(
    (match) => match[2]?.trim().split(/\s+/) ?? [],
  );
  assert.deepEqual(
    story.map((args) => args.filter((arg) => !arg.startsWith('-') && !arg.includes('/')).join(' ')),
    [
      'show',
      'sandbox kill db1',
      'show',
      'sandbox start db1',
      'show',
      'set-online db1',
      'move-role writer db1',
      'journal',
    ],
    output,
  );
  const configArgs = story[0]?.slice(1) ?? [];
  const cli = async (args: string[]) => {
    const result = await run(process.execPath, [CLI, ...args]).catch(
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    const code = 'code' in result ? result.code : 0;
    assert.equal(code, 0, `switchyard ${args.join(' ')} failed: ${result.stdout}${result.stderr}`);
    t.diagnostic(`$ switchyard ${args.join(' ')}\n${result.stdout.slice(0, 1500)}`);
    return result.stdout;
  };
  const hosts = async () =>
    (
      JSON.parse(
        await run(process.execPath, [CLI, 'show', '--json', ...configArgs]).then(
          (result) => result.stdout,
        ),
      ) as { hosts: ShownHost[] }
    ).hosts;
  const writer = async () =>
    (await hosts()).find((host) => host.roles.some((entry) => entry.role === 'writer'))?.name;
  const host = async (name: string) => (await hosts()).find((entry) => entry.name === name);
  const step = (index: number) => cli(story[index] as string[]);

  await waitFor('db1 to be the writer', async () => (await writer()) === 'db1', 20_000, 300);
  assert.match(await step(0), /db1 .*writer\(127\.0\.1\.100\)/s);
  await step(1);
  await waitFor(
    'db2 to take over the writer role',
    async () => (await writer()) === 'db2',
    30_000,
    300,
  );
  // The failover does not wait for HARD_OFFLINE (a refused port is evidence at once); the monitor
  // gets there after failures_before_down checks.
  await waitFor(
    'db1 to be HARD_OFFLINE',
    async () => (await host('db1'))?.state === 'HARD_OFFLINE',
    10_000,
    300,
  );
  assert.match(await step(2), /db2 .*writer\(127\.0\.1\.100\)/s);
  await step(3);
  await waitFor(
    'db1 to be held after its restart',
    async () => (await host('db1'))?.state === 'AWAITING_RECOVERY',
    20_000,
    300,
  );
  assert.match(await step(4), /db1 .*AWAITING_RECOVERY/s);
  assert.equal(await writer(), 'db2', 'a restarted host does not get the writer back on its own');
  // Why not? `switchyard why db1` names the hold that keeps db1 from the writer role.
  const why = await cli(['why', 'db1', ...configArgs]);
  assert.match(why, /held_candidate: db1 is held for the operator \(restarted/, why);
  await step(5);
  await waitFor(
    'db1 to be ONLINE',
    async () => (await host('db1'))?.state === 'ONLINE',
    10_000,
    300,
  );
  await step(6);
  assert.equal(await writer(), 'db1', 'the writer is back on db1');
  const journal = await step(7);
  assert.match(journal, /failover/);
  assert.match(journal, /host\.set_online +db1/);
  assert.match(journal, /switchover\.done +db1\/writer/);

  await waitFor(
    'Prometheus to be ready',
    async () => (await fetch(`http://127.0.0.1:${base + 200}/-/ready`)).ok,
    30_000,
    300,
  );
  demo.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => demo.once('exit', resolve));
  assert.equal(code, 0, output);
  assert.match(output, /stopping the daemon/);
});
