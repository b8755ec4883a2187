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

test('switchyard demo: sandbox, daemon, Prometheus and Alertmanager; show works; Ctrl-C stops cleanly', async (t) => {
  if (!requireBinaries(t, [...MARIADB, ['prometheus', 'prometheus'], ['prometheus-alertmanager', 'prometheus-alertmanager']])) return;
  const parent = mkdtempSync(join(tmpdir(), 'switchyard-demo-'));
  const dir = join(parent, 'sandbox');
  const base = await findFreePortRange(202);
  t.after(async () => {
    if (existsSync(join(dir, 'sandbox.json'))) await run(process.execPath, [CLI, 'sandbox', 'down', '--dir', dir]).catch(() => undefined);
    rmSync(parent, { recursive: true, force: true });
  });
  const demo = spawn(process.execPath, [CLI, 'demo', '--dir', dir, '--base-port', String(base)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  demo.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  demo.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  t.after(() => demo.kill('SIGKILL'));
  await waitFor('the demo to print what to try', async () => output.includes('Try, in another terminal'), 60_000, 200);
  assert.match(output, /Prometheus: http:\/\/127\.0\.0\.1:\d+\/alerts/);
  const configFile = join(dir, 'switchyard.yml');
  const shown = await waitFor('switchyard show to list db1 as the writer', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'show', '-c', configFile]);
    return /db1 .*writer\(127\.0\.1\.100\)/s.test(stdout) ? stdout : undefined;
  }, 20_000, 500);
  t.diagnostic(shown);
  await waitFor('Prometheus to be ready', async () => (await fetch(`http://127.0.0.1:${base + 200}/-/ready`)).ok, 30_000, 300);
  demo.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => demo.once('exit', resolve));
  assert.equal(code, 0, output);
  assert.match(output, /stopping the daemon/);
});
