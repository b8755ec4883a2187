import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { findFreePortRange } from '../../src/sandbox/ports.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { ETCD } from '../support/etcd.js';
import { waitFor } from '../support/sandbox.js';

const run = promisify(execFile);
const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;

test(
  'switchyard demo --ha: three managers on a local etcd; the printed kill of the leader hands over, the CLI follows the leader, Ctrl-C stops managers and etcd',
  { timeout: 180_000 },
  async (t) => {
    if (!requireBinaries(t, [...MARIADB, ...ETCD])) return;
    const parent = mkdtempSync(join(tmpdir(), 'switchyard-demo-ha-'));
    const dir = join(parent, 'sandbox');
    const base = await findFreePortRange(4);
    t.after(async () => {
      if (existsSync(join(dir, 'sandbox.json')))
        await run(process.execPath, [CLI, 'sandbox', 'down', '--dir', dir]).catch(() => undefined);
      rmSync(parent, { recursive: true, force: true });
    });
    const demo = spawn(
      process.execPath,
      [CLI, 'demo', '--ha', '--dir', dir, '--base-port', String(base)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    demo.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    demo.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    t.after(async () => {
      demo.kill('SIGKILL');
      // A demo killed by a failing test leaves its managers and etcd members: stop exactly those (their command lines name this test's directory).
      const pids = (await run('pgrep', ['-f', dir]).catch(() => ({ stdout: '' }))).stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map(Number);
      for (const pid of pids) if (pid !== process.pid) process.kill(pid, 'SIGKILL');
    });
    await waitFor(
      'the demo to print the steps',
      async () => output.includes('Ctrl-C stops the managers'),
      90_000,
      200,
    );

    const managers = [
      ...output.matchAll(/^ +(m\d) +(http:\/\/\S+) +pid (\d+) +(LEADER|follower)/gm),
    ].map((match) => ({
      name: match[1],
      url: match[2] as string,
      pid: Number(match[3]),
      leader: match[4] === 'LEADER',
    }));
    assert.equal(managers.length, 3, output);
    assert.equal(managers.filter((manager) => manager.leader).length, 1, output);
    const killLine = /^ +3\. kill -9 (\d+)/m.exec(output);
    const leader = managers.find((manager) => manager.leader);
    assert.equal(Number(killLine?.[1]), leader?.pid, 'step 3 kills the leader');
    process.kill(leader?.pid as number, 'SIGKILL');
    const survivors = managers.filter((manager) => !manager.leader);
    await waitFor(
      'a survivor to lead',
      async () => {
        for (const manager of survivors) {
          const text = await (await fetch(`${manager.url}/metrics`)).text();
          if (/^switchyard_leader\{[^}]*\} 1$/m.test(text)) return true;
        }
        return false;
      },
      30_000,
      200,
    );
    const setOnline =
      /^ +5\. npx switchyard (set-online .+?) +# /m.exec(output)?.[1]?.trim().split(/\s+/) ?? [];
    const result = await run(process.execPath, [CLI, ...setOnline], { cwd: process.cwd() });
    assert.match(result.stdout, /db3/);

    const etcdPids = (
      await run('pgrep', ['-f', join(dir, 'etcd')]).catch(() => ({ stdout: '' }))
    ).stdout
      .trim()
      .split('\n')
      .filter(Boolean);
    assert.equal(etcdPids.length, 3, 'three etcd members run');
    const exited = new Promise<number | null>((resolve) =>
      demo.once('exit', (code) => resolve(code)),
    );
    demo.kill('SIGINT');
    assert.equal(await exited, 0);
    const left = (
      await run('pgrep', ['-f', join(dir, 'etcd')]).catch(() => ({ stdout: '' }))
    ).stdout.trim();
    assert.equal(left, '', 'etcd stopped with the demo');
    for (const manager of survivors)
      await assert.rejects(fetch(`${manager.url}/healthz`), 'the managers stopped with the demo');
  },
);
