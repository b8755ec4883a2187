/**
 * `switchyard demo --haproxy`: the sandbox behind a local HAProxy the daemon drives. Writes through
 * HAProxy's writer port reach the writer; after kill -9 of the writer they reach the new one;
 * Ctrl-C stops HAProxy with the demo.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/load.js';
import { openConnection } from '../../src/mysql/connect.js';
import { findFreePortRange, isPortFree } from '../../src/sandbox/ports.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { HAPROXY } from '../support/haproxy.js';
import { waitFor } from '../support/sandbox.js';

const run = promisify(execFile);
const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;

test('demo --haproxy: writes through HAProxy reach the writer, and the new writer after kill -9', async (t) => {
  if (!requireBinaries(t, [...MARIADB, ...HAPROXY])) return;
  const parent = mkdtempSync(join(tmpdir(), 'switchyard-demo-haproxy-'));
  const dir = join(parent, 'sandbox');
  const base = await findFreePortRange(302);
  t.after(async () => {
    if (existsSync(join(dir, 'sandbox.json')))
      await run(process.execPath, [CLI, 'sandbox', 'down', '--dir', dir]).catch(() => undefined);
    rmSync(parent, { recursive: true, force: true });
  });
  const demo = spawn(
    process.execPath,
    [CLI, 'demo', '--haproxy', '--dir', dir, '--base-port', String(base)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
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
  const writes = Number(/HAProxy: +writes 127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
  assert.ok(writes > 0, output);
  const config = loadConfig(join(dir, 'switchyard.yml'));
  const credentials = {
    user: config.mysql.user,
    password: readFileSync(join(dir, 'mysql.pass'), 'utf8').trim(),
  };
  const serverIdThrough = async (): Promise<number | undefined> => {
    const connection = await openConnection({
      host: '127.0.0.1',
      port: writes,
      ...credentials,
      connectTimeoutMs: 500,
    }).catch(() => undefined);
    if (!connection) return undefined;
    try {
      const [rows] = await connection.query('SELECT @@server_id AS id, @@read_only AS ro');
      const row = (rows as Array<{ id: number; ro: number }>)[0];
      return Number(row?.ro) === 0 ? Number(row?.id) : undefined;
    } catch {
      return undefined;
    } finally {
      connection.destroy();
    }
  };
  assert.equal(
    await waitFor('writes through HAProxy to reach the writable db1', serverIdThrough, 15_000),
    1,
  );
  await run(process.execPath, [CLI, 'sandbox', 'kill', 'db1', '--dir', dir]);
  assert.equal(
    await waitFor('writes through HAProxy to reach the new writer', serverIdThrough, 30_000),
    2,
  );
  demo.kill('SIGINT');
  await waitFor('the demo to exit', async () => demo.exitCode !== null, 20_000);
  assert.equal(demo.exitCode, 0, output);
  assert.ok(await isPortFree(writes), "HAProxy's writer port is free after Ctrl-C");
});
