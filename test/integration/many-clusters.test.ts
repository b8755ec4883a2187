import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR } from '../support/daemon.js';
import { explainedBy } from '../support/deadline.js';
import { startSandbox, waitFor, type TestSandbox } from '../support/sandbox.js';

const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;

/**
 * The sandbox's config as a conf.d file: its own cluster name, secrets as absolute paths. The
 * listener and its token are the process's: both files take them from `shared`.
 */
function confFile(
  sandbox: TestSandbox,
  cluster: string,
  dir: string,
  shared: TestSandbox,
): { token: string; url: string } {
  const raw = yaml.load(readFileSync(sandbox.manifest.configFile, 'utf8')) as Record<string, any>;
  const owner = yaml.load(readFileSync(shared.manifest.configFile, 'utf8')) as Record<string, any>;
  raw.cluster = cluster;
  raw.monitor = FAST_MONITOR;
  raw.mysql.password_file = join(sandbox.dir, raw.mysql.password_file);
  raw.mysql.replication_password_file = join(sandbox.dir, raw.mysql.replication_password_file);
  raw.listen = owner.listen;
  raw.auth = { token_file: join(shared.dir, owner.auth.token_file) };
  raw.state_dir = join(sandbox.dir, `state-${cluster}`);
  writeFileSync(join(dir, `${cluster}.yml`), yaml.dump(raw));
  return {
    token: readFileSync(raw.auth.token_file, 'utf8').trim(),
    url: `http://${raw.listen}/api/v1/clusters/${cluster}`,
  };
}

test(
  'conf.d: two clusters in one manager process and one listener, each with its own engine and loop: a host hanging in one does not keep the other from failing over',
  { timeout: 180_000 },
  async (t) => {
    if (!requireBinaries(t, MARIADB)) return;
    const alphaSandbox = await startSandbox(t, { masters: 2, replicas: 0 });
    const betaSandbox = await startSandbox(t, { masters: 2, replicas: 0 });
    const confd = join(alphaSandbox.dir, 'conf.d');
    mkdirSync(confd);
    const alpha = confFile(alphaSandbox, 'alpha', confd, alphaSandbox);
    const beta = confFile(betaSandbox, 'beta', confd, alphaSandbox);
    const logFile = join(alphaSandbox.dir, 'manager.log');
    const log = openSync(logFile, 'a');
    const manager = spawn(process.execPath, [CLI, 'run', '-c', confd], {
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    t.after(() => manager.kill('SIGKILL'));
    const status = async (cluster: { token: string; url: string }) =>
      (await (
        await fetch(`${cluster.url}/status`, {
          headers: { authorization: `Bearer ${cluster.token}` },
        })
      ).json()) as any;
    for (const cluster of [alpha, beta])
      await explainedBy(
        waitFor(
          'the writer role assigned',
          async () => (await status(cluster)).roles?.writer?.['127.0.1.100'] === 'db1',
          30_000,
          200,
        ),
        logFile,
        manager,
      );
    assert.equal((await status(alpha)).cluster, 'alpha');
    // The merged /metrics may be one rendered up to MERGED_REUSE_MS (500 ms) ago.
    await waitFor(
      "beta's hosts in the one /metrics",
      async () =>
        /switchyard_host_up\{host="db1",cluster="beta"\} 1/.test(
          await (await fetch(new URL('/metrics', beta.url))).text(),
        ),
      10_000,
      100,
    );

    // alpha's db2 hangs (SIGSTOP: connections are accepted by the kernel but never answered), then
    // beta's writer dies: beta fails over while alpha's checks wait on their timeouts.
    const hung = alphaSandbox.instance('db2').pid() as number;
    process.kill(hung, 'SIGSTOP');
    t.after(() => {
      try {
        process.kill(hung, 'SIGCONT');
      } catch {
        // already gone
      }
    });
    await betaSandbox.instance('db1').kill();
    const killedAt = Date.now();
    await waitFor(
      'beta to fail over to db2',
      async () => (await status(beta)).roles?.writer?.['127.0.1.100'] === 'db2',
      60_000,
      100,
    );
    console.log(
      `# beta failed over ${Date.now() - killedAt} ms after its writer died, with a host of alpha hanging`,
    );
    assert.equal(
      (await status(alpha)).roles.writer['127.0.1.100'],
      'db1',
      'alpha keeps its writer',
    );
    process.kill(hung, 'SIGCONT');
  },
);
