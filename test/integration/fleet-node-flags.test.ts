/**
 * A fleet started with the unit's node flags says so: `switchyard run` of eleven clusters (one
 * more than the unit's flags were measured with), run by node as the shipped unit runs it, logs
 * `daemon.node_flags` naming the fleet drop-in; run with the drop-in's flags, it does not. The
 * clusters' hosts are closed loopback ports: the warning is about the process, not the servers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { UNIT_FLAGS_CLUSTERS } from '../../src/daemon/node-flags.js';
import { findFreePortRange } from '../../src/sandbox/ports.js';
import { unitFileNodeFlags } from '../support/unit-files.js';

const root = new URL('../../', import.meta.url).pathname;
const CLI = join(root, 'bin/switchyard.js');
const CLUSTERS = UNIT_FLAGS_CLUSTERS + 1;

/** A clusters: file of CLUSTERS clusters of 3 hosts on closed ports, one listener. */
async function fleetFile(dir: string): Promise<string> {
  const ports = await findFreePortRange(CLUSTERS * 3 + 1);
  const secret = join(dir, 'mysql.pass');
  writeFileSync(secret, 'unused\n', { mode: 0o600 });
  const token = join(dir, 'token');
  writeFileSync(token, 'x'.repeat(32), { mode: 0o600 });
  const clusters = Array.from({ length: CLUSTERS }, (_, index) => ({
    cluster: `c${index + 1}`,
    mysql: {
      user: 'switchyard',
      password_file: secret,
      replication_user: 'repl',
      replication_password_file: secret,
    },
    hosts: {
      db1: { address: '127.0.0.1', port: ports + 1 + index * 3, peer: 'db2' },
      db2: { address: '127.0.0.1', port: ports + 2 + index * 3, peer: 'db1' },
      db3: { address: '127.0.0.1', port: ports + 3 + index * 3, replica_of: 'writer' },
    },
    roles: { writer: { exclusive: true, hosts: ['db1', 'db2'] } },
  }));
  const file = join(dir, 'fleet.yml');
  writeFileSync(
    file,
    yaml.dump({
      listen: `127.0.0.1:${ports}`,
      auth: { token_file: token },
      state_dir: join(dir, 'state'),
      clusters,
    }),
  );
  return file;
}

/** `switchyard run -c file` under node with `flags`, until it has started, then stopped: its log lines. */
async function startAndStop(file: string, flags: string[], logFile: string): Promise<string[]> {
  const out = openSync(logFile, 'w');
  const manager = spawn(process.execPath, [...flags, CLI, 'run', '-c', file], {
    stdio: ['ignore', out, out],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  closeSync(out);
  const exited = new Promise<number | null>((resolve) => manager.once('exit', resolve));
  const read = () => readFileSync(logFile, 'utf8');
  const deadline = Date.now() + 60_000;
  while (!/"event":"daemon\.started"/.test(read())) {
    if (manager.exitCode !== null)
      assert.fail(`the manager exited (${manager.exitCode}):\n${read()}`);
    assert.ok(Date.now() < deadline, `no daemon.started within 60 s:\n${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  manager.kill('SIGTERM');
  await exited;
  // Everything the process logged, the lines after daemon.started included.
  return read()
    .split('\n')
    .filter((line) => line.startsWith('{'));
}

test(
  `${CLUSTERS} clusters under the unit's node flags: a warning naming the fleet drop-in; under the drop-in's: none`,
  {
    timeout: 180_000,
  },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-fleet-flags-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = await fleetFile(dir);

    const underUnit = await startAndStop(
      file,
      unitFileNodeFlags(join(root, 'deploy/switchyard.service')),
      join(dir, 'unit.log'),
    );
    const warnings = underUnit.filter((line) => line.includes('"event":"daemon.node_flags"'));
    assert.equal(warnings.length, 1, underUnit.join('\n'));
    const warning = JSON.parse(warnings[0] as string) as { level: number; warning: string };
    assert.equal(warning.level, 40, 'logged as a warning');
    assert.match(
      warning.warning,
      new RegExp(
        `^${CLUSTERS} clusters in one process with node --max-semi-space-size=2 --optimize-for-size`,
      ),
    );
    assert.match(warning.warning, /install deploy\/switchyard-fleet\.conf/);

    const underDropIn = await startAndStop(
      file,
      unitFileNodeFlags(join(root, 'deploy/switchyard-fleet.conf')),
      join(dir, 'fleet.log'),
    );
    assert.ok(underDropIn.some((line) => line.includes('"event":"daemon.stopping"')));
    assert.ok(!underDropIn.some((line) => line.includes('"event":"daemon.node_flags"')));
  },
);
