import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as yaml from 'js-yaml';
import { startLocalEtcd, type LocalEtcdCluster } from '../../ha/local-etcd.js';
import { findFreePortRange } from '../../sandbox/ports.js';
import { sandboxUp } from '../../sandbox/cluster.js';
import { findExecutable } from '../../sandbox/binaries.js';
import { CliExit, EXIT_FAILED } from '../exit.js';
import { untilSignal } from './run.js';

interface DemoManager {
  name: string;
  configFile: string;
  url: string;
  logFile: string;
  child: ChildProcess;
}

/**
 * `switchyard demo --ha`: the sandbox cluster, a 3-member etcd on loopback ports and three
 * managers (`switchyard run` processes) sharing the cluster through it. Prints who leads and the
 * commands to kill the leader and watch another take over. Ctrl-C stops the managers and etcd
 * (etcd's data is the demo's only: it is removed); the sandbox keeps running.
 */
export async function runHaDemo(dir: string, basePort: number): Promise<void> {
  if (findExecutable(['etcd']) === undefined)
    throw new CliExit(EXIT_FAILED, 'demo --ha needs etcd: apt-get install etcd-server');
  if (!existsSync(join(dir, 'sandbox.json'))) {
    await sandboxUp({
      dir,
      masters: 2,
      replicas: 1,
      basePort,
      preferWriter: false,
      onProgress: (message) => process.stdout.write(`${message}\n`),
    });
  } else {
    process.stdout.write(`reusing the sandbox in ${dir}\n`);
  }
  const etcdDir = join(dir, 'etcd');
  rmSync(etcdDir, { recursive: true, force: true });
  process.stdout.write('starting a 3-member etcd on loopback ports...\n');
  let etcd: LocalEtcdCluster;
  try {
    etcd = await startLocalEtcd(etcdDir, 3);
  } catch (error) {
    throw new CliExit(
      EXIT_FAILED,
      `etcd did not start: ${(error as Error).message} (logs in ${etcdDir})`,
    );
  }
  const base = yaml.load(readFileSync(join(dir, 'switchyard.yml'), 'utf8')) as Record<
    string,
    unknown
  >;
  const port = await findFreePortRange(3);
  const cli = process.argv[1] as string;
  const managers: DemoManager[] = ['m1', 'm2', 'm3'].map((name, index) => {
    const configFile = join(dir, `manager-${name}.yml`);
    const listen = `127.0.0.1:${port + index}`;
    writeFileSync(
      configFile,
      yaml.dump({
        ...base,
        listen,
        state_dir: `state-${name}`,
        ha: { etcd: { endpoints: etcd.endpoints, prefix: '/switchyard-demo' }, lease: '5s' },
      }),
    );
    const logFile = join(dir, `manager-${name}.log`);
    const log = openSync(logFile, 'a');
    const child = spawn(process.execPath, [cli, 'run', '-c', configFile], {
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    return { name, configFile, url: `http://${listen}`, logFile, child };
  });
  const stop = async () => {
    await Promise.all(
      managers.map(
        (manager) =>
          new Promise<void>((resolve) => {
            if (manager.child.exitCode !== null || manager.child.signalCode !== null)
              return resolve();
            manager.child.once('exit', () => resolve());
            manager.child.kill('SIGTERM');
          }),
      ),
    );
    await etcd.stop();
    rmSync(etcdDir, { recursive: true, force: true });
  };
  const leader = await waitForLeader(managers, 60_000);
  if (!leader) {
    await stop();
    throw new CliExit(
      EXIT_FAILED,
      `no manager became leader within 60 s (logs: ${managers.map((manager) => manager.logFile).join(', ')})`,
    );
  }
  const shown = relative(process.cwd(), dir).startsWith('..')
    ? dir
    : relative(process.cwd(), dir) || '.';
  const follower = managers.find((manager) => manager !== leader) as DemoManager;
  const config = (manager: DemoManager) => join(shown, `manager-${manager.name}.yml`);
  process.stdout.write(
    [
      '',
      `Three managers share the sandbox cluster through etcd (${etcd.endpoints.join(', ')}); ha.lease 5s:`,
      ...managers.map(
        (manager) =>
          `  ${manager.name}  ${manager.url}  pid ${manager.child.pid}  ${manager === leader ? 'LEADER' : 'follower'}   log: ${join(shown, `manager-${manager.name}.log`)}`,
      ),
      '',
      'Try it, in another terminal:',
      `  1. npx switchyard show -c ${config(follower)}                # any manager answers reads`,
      `  2. curl -s ${follower.url}/metrics | grep '^switchyard_leader'   # 0 on followers, 1 on the leader`,
      `  3. kill -9 ${leader.child.pid}                                      # the leader (${leader.name}) dies`,
      `  4. curl -s ${follower.url}/metrics | grep '^switchyard_leader'   # about 5-6 s later one survivor leads (switchyard_leader 1)`,
      `  5. npx switchyard set-online db3 -c ${config(follower)}   # a control command: a follower answers 409 + the leader's URL, the CLI follows it`,
      `  6. npx switchyard journal -c ${config(follower)}             # ha.leadership_gained, entries carry "term"`,
      `  7. npx switchyard run -c ${config(leader)}                  # start ${leader.name} again: it follows`,
      '',
      'Ctrl-C stops the managers and etcd; the sandbox keeps running until: npx switchyard sandbox down --dir ' +
        shown,
      '',
    ].join('\n'),
  );
  await untilSignal();
  process.stdout.write('stopping the managers and etcd...\n');
  await stop();
}

async function waitForLeader(
  managers: DemoManager[],
  timeoutMs: number,
): Promise<DemoManager | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const manager of managers) {
      try {
        const text = await (
          await fetch(`${manager.url}/metrics`, { signal: AbortSignal.timeout(1000) })
        ).text();
        if (/^switchyard_leader\{[^}]*\} 1$/m.test(text)) return manager;
      } catch {
        // not up yet
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return undefined;
}
