import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR } from '../support/daemon.js';
import { explainedBy } from '../support/deadline.js';
import { startSandbox, waitFor, type TestSandbox } from '../support/sandbox.js';

const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;
const run = promisify(execFile);

/** A sandbox's cluster as one entry of a clusters: list (its secrets as absolute paths). */
function section(
  sandbox: TestSandbox,
  cluster: string,
  monitor: Record<string, unknown> = FAST_MONITOR,
): Record<string, any> {
  const raw = yaml.load(readFileSync(sandbox.manifest.configFile, 'utf8')) as Record<string, any>;
  const { listen: _listen, auth: _auth, state_dir: _state, ...rest } = raw;
  rest.cluster = cluster;
  rest.monitor = monitor;
  rest.mysql.password_file = join(sandbox.dir, raw.mysql.password_file);
  rest.mysql.replication_password_file = join(sandbox.dir, raw.mysql.replication_password_file);
  return rest;
}

/** The CLI as an operator runs it; resolves with its exit code and output, whatever the code. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { ...process.env, SWITCHYARD_TOKEN: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

test(
  "clusters: two real clusters in one file, one process, one listener: both monitored and labelled, a lost writer in one holds the other's cycles back until it is decided on, a failover in one leaves the other untouched, the API and the CLI address each by name",
  { timeout: 240_000 },
  async (t) => {
    if (!requireBinaries(t, MARIADB)) return;
    const alphaSandbox = await startSandbox(t, { masters: 2, replicas: 1 });
    const betaSandbox = await startSandbox(t, { masters: 2, replicas: 1 });
    const owner = yaml.load(readFileSync(alphaSandbox.manifest.configFile, 'utf8')) as Record<
      string,
      any
    >;
    const file = join(alphaSandbox.dir, 'fleet.yml');
    writeFileSync(
      file,
      yaml.dump({
        listen: owner.listen,
        auth: { token_file: join(alphaSandbox.dir, owner.auth.token_file) },
        state_dir: join(alphaSandbox.dir, 'fleet-state'),
        // Alpha's cycles come every 100 ms, so that several of them become due within beta's
        // urgency (about 310 ms of quick looks) whatever the load: at 300 ms, as beta's, one
        // cycle of alpha's that ran a little long could span the whole window.
        clusters: [
          section(alphaSandbox, 'alpha', { ...FAST_MONITOR, interval: '100ms' }),
          section(betaSandbox, 'beta'),
        ],
      }),
    );
    const checked = await cli('config', 'check', '-c', file);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /2 cluster\(s\) on one listener/);

    const token = readFileSync(join(alphaSandbox.dir, owner.auth.token_file), 'utf8').trim();
    const base = `http://${owner.listen}`;
    const logFile = join(alphaSandbox.dir, 'fleet-manager.log');
    const log = openSync(logFile, 'a');
    const manager = spawn(process.execPath, [CLI, 'run', '-c', file], {
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    t.after(() => manager.kill('SIGKILL'));
    const get = async (path: string) => {
      const response = await fetch(`${base}${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return { status: response.status, body: (await response.json()) as any };
    };
    const writerOf = async (cluster: string) =>
      (await get(`/api/v1/clusters/${cluster}/status`)).body.roles?.writer?.['127.0.1.100'];

    await explainedBy(
      waitFor('the listener', async () => (await fetch(`${base}/healthz`)).ok, 30_000, 200),
      logFile,
      manager,
    );
    for (const cluster of ['alpha', 'beta'])
      await explainedBy(
        waitFor(
          `${cluster}'s writer`,
          async () => (await writerOf(cluster)) === 'db1',
          30_000,
          200,
        ),
        logFile,
        manager,
      );

    // The API: by path or by query; naming none with two clusters is refused with the names.
    assert.equal((await get('/api/v1/clusters/alpha/status')).body.cluster, 'alpha');
    assert.equal((await get('/api/v1/status?cluster=beta')).body.cluster, 'beta');
    assert.deepEqual((await get('/api/v1/clusters')).body, { clusters: ['alpha', 'beta'] });
    const unnamed = await get('/api/v1/status');
    assert.equal(unnamed.status, 400);
    assert.equal(unnamed.body.error, 'cluster_required');
    assert.match(unnamed.body.detail, /alpha, beta/);
    assert.equal((await get('/api/v1/clusters/gamma/status')).status, 404);
    assert.equal(
      (await fetch(`${base}/api/v1/clusters/alpha/status`)).status,
      401,
      'authenticated as ever',
    );

    // One exposition: every series labelled, each metric family under one HELP.
    await waitFor(
      'every host of both clusters up in /metrics',
      async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        return ['alpha', 'beta'].every((cluster) =>
          ['db1', 'db2', 'db3'].every((host) =>
            text.includes(`switchyard_host_up{host="${host}",cluster="${cluster}"} 1`),
          ),
        );
      },
      30_000,
      200,
    );
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.equal(metrics.match(/^# HELP switchyard_host_up /gm)?.length, 1);
    assert.match(metrics, /switchyard_monitor_cycle_duration_seconds_count\{cluster="alpha"\} \d+/);
    assert.match(metrics, /switchyard_monitor_cycle_duration_seconds_count\{cluster="beta"\} \d+/);

    // The CLI: --cluster picks one; none is a usage error that names them.
    const shown = await cli('show', '-c', file, '--cluster', 'beta');
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /db1/);
    const unnamedCli = await cli('show', '-c', file);
    assert.equal(unnamedCli.code, 2);
    assert.match(unnamedCli.stderr, /cluster_required.*alpha, beta/);
    const mode = await cli('mode', 'manual', '-c', file, '--cluster', 'alpha');
    assert.equal(mode.code, 0, mode.stderr);
    assert.equal((await get('/api/v1/clusters/alpha/status')).body.mode, 'manual');
    assert.equal((await get('/api/v1/clusters/beta/status')).body.mode, 'active');
    const back = await cli('mode', 'active', '-c', file, '--cluster', 'alpha');
    assert.equal(back.code, 0, back.stderr);

    // kill -9 of beta's writer: beta fails over, alpha keeps its writer and sees nothing wrong.
    // Beta is in manual mode at first: its loss is not decided on until its quick looks (about
    // 310 ms) are over, and alpha's cycles, due every 100 ms, wait for them (FleetPriority).
    const lastSeq = (entries: Array<{ seq: number }>) =>
      Math.max(0, ...entries.map((entry) => entry.seq));
    const alphaSeqBefore = lastSeq((await get('/api/v1/clusters/alpha/journal')).body.entries);
    const yielded = (text: string) =>
      Number(
        /^switchyard_monitor_cycle_yielded_seconds_total\{cluster="alpha"\} (\S+)$/m.exec(
          text,
        )?.[1],
      );
    assert.equal(yielded(await (await fetch(`${base}/metrics`)).text()), 0, 'alpha never waited');
    const manual = await cli('mode', 'manual', '-c', file, '--cluster', 'beta');
    assert.equal(manual.code, 0, manual.stderr);
    await betaSandbox.instance('db1').kill();
    await waitFor(
      "alpha's cycles to wait while beta has lost its writer",
      async () => yielded(await (await fetch(`${base}/metrics`)).text()) > 0,
      10_000,
      100,
    );
    assert.equal(await writerOf('beta'), 'db1', 'manual mode: no failover yet');
    const active = await cli('mode', 'active', '-c', file, '--cluster', 'beta');
    assert.equal(active.code, 0, active.stderr);
    const activeAt = Date.now();
    await waitFor(
      'beta to fail over to db2',
      async () => (await writerOf('beta')) === 'db2',
      60_000,
      100,
    );
    console.log(`# beta failed over ${Date.now() - activeAt} ms after it was set active`);
    const alpha = (await get('/api/v1/clusters/alpha/status')).body;
    assert.equal(alpha.roles.writer['127.0.1.100'], 'db1', 'alpha keeps its writer');
    for (const host of ['db1', 'db2', 'db3'])
      assert.equal(
        alpha.hosts.find((entry: { name: string }) => entry.name === host)?.state,
        'ONLINE',
        `alpha's ${host} stays ONLINE`,
      );
    const alphaJournal = (await get('/api/v1/clusters/alpha/journal')).body.entries as Array<{
      seq: number;
      event?: string;
      kind?: string;
    }>;
    const alphaSince = alphaJournal.filter((entry) => entry.seq > alphaSeqBefore);
    assert.ok(
      !alphaSince.some((entry) => /failover/.test(`${entry.event ?? ''} ${entry.kind ?? ''}`)),
      `alpha's journal has no failover: ${JSON.stringify(alphaSince)}`,
    );
    // The counter is counted when the failover's last step is done, just after the role moved.
    await waitFor(
      "beta's failover counted, its old writer HARD_OFFLINE",
      async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        return (
          /switchyard_failovers_total\{[^}]*cluster="beta"[^}]*\} 1/.test(text) &&
          text.includes('switchyard_host_state{host="db1",state="HARD_OFFLINE",cluster="beta"} 1')
        );
      },
      15_000,
      100,
    );
    const after = await (await fetch(`${base}/metrics`)).text();
    assert.doesNotMatch(after, /switchyard_failovers_total\{[^}]*cluster="alpha"[^}]*\} [1-9]/);
    assert.match(after, /switchyard_host_state\{host="db1",state="ONLINE",cluster="alpha"\} 1/);
  },
);
