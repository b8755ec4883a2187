import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import pino from 'pino';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { Daemon } from '../../daemon/daemon.js';
import { daemonRouters } from '../../daemon/routers.js';
import { createLogger } from '../../log.js';
import { readManifest, sandboxStatus, sandboxUp } from '../../sandbox/cluster.js';
import { startDemoStack } from '../../demo/prometheus-stack.js';
import { startDemoHaproxy, type DemoHaproxy } from '../../demo/haproxy.js';
import { CliExit, EXIT_FAILED, EXIT_USAGE } from '../exit.js';
import { untilSignal } from './run.js';
import { runHaDemo } from './demo-ha.js';
import { DEFAULT_SANDBOX_DIR } from './sandbox.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      "the newcomer's first command: a sandbox cluster on loopback ports plus the Switchyard daemon",
    )
    .option('--dir <dir>', 'sandbox directory', DEFAULT_SANDBOX_DIR)
    .option(
      '--base-port <port>',
      'port of the first MariaDB instance (a new sandbox only)',
      '13306',
    )
    .option(
      '--ha',
      'three managers sharing the cluster through a local 3-member etcd (kill the leader and watch)',
    )
    .option(
      '--haproxy',
      'a local HAProxy in front of the sandbox, driven by the daemon through its runtime API (writes and reads through it)',
    )
    .action(async (options: { dir: string; basePort: string; ha?: boolean; haproxy?: boolean }) => {
      const dir = resolve(options.dir);
      const basePort = Number(options.basePort);
      if (!Number.isInteger(basePort) || basePort < 1024 || basePort > 65000)
        throw new CliExit(
          EXIT_USAGE,
          `--base-port must be a port number, not "${options.basePort}"`,
        );
      if (options.ha) {
        try {
          await runHaDemo(dir, basePort);
        } catch (error) {
          if (error instanceof CliExit) throw error;
          throw new CliExit(EXIT_FAILED, `demo --ha failed: ${(error as Error).message}`);
        }
        return;
      }
      try {
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
          const stopped = (await sandboxStatus(dir)).filter((status) => !status.running);
          if (stopped.length > 0)
            process.stdout.write(
              `note: ${stopped.map((status) => status.name).join(', ')} not running\n`,
            );
        }
      } catch (error) {
        throw new CliExit(EXIT_FAILED, `demo failed: ${(error as Error).message}`);
      }
      const configFile = join(dir, 'switchyard.yml');
      const loaded = loadConfig(configFile);
      const firstPort = readManifest(dir).hosts[0]?.port ?? basePort;
      let haproxy: DemoHaproxy | undefined;
      if (options.haproxy) {
        try {
          haproxy = await startDemoHaproxy({
            dir,
            hosts: readManifest(dir).hosts.map((host) => ({ name: host.name, port: host.port })),
            writerPort: firstPort + 300,
            readerPort: firstPort + 301,
          });
        } catch (error) {
          throw new CliExit(EXIT_FAILED, `demo --haproxy failed: ${(error as Error).message}`);
        }
      }
      // The HAProxy exists only while the demo runs: its section is not written to the sandbox's file.
      const config = haproxy ? { ...loaded, routing: { haproxy: haproxy.routing } } : loaded;
      const logFile = join(dir, 'switchyard.log');
      const log = createLogger('switchyard', {
        destination: pino.destination({ dest: logFile, sync: false, mkdir: true }),
      });
      const daemon = new Daemon({ config, log, extraRouters: daemonRouters });
      let url: string;
      try {
        url = await daemon.start();
      } catch (error) {
        await haproxy?.stop();
        throw new CliExit(
          EXIT_FAILED,
          `daemon failed to start: ${(error as Error).message} (log: ${logFile})`,
        );
      }
      const daemonPort = Number(config.listen.slice(config.listen.lastIndexOf(':') + 1));
      const stack = await startDemoStack({
        dir,
        daemonPort,
        tokenFile: config.auth.token_file as string,
        prometheusPort: firstPort + 200,
        alertmanagerPort: firstPort + 201,
      });
      const nearby = relative(process.cwd(), dir) || '.';
      // A path that climbs out of the working directory is easier to paste as an absolute one.
      const shown = nearby.startsWith('..') ? dir : nearby;
      process.stdout.write(
        [
          '',
          `Switchyard is managing the sandbox cluster "${config.cluster}" (db1 writer, db2 its master-master peer, db3 a replica).`,
          `  metrics:   ${url}/metrics`,
          `  log:       ${join(shown, 'switchyard.log')}      journal: ${join(shown, 'state', 'journal.jsonl')}`,
          stack.prometheusUrl
            ? `  Prometheus: ${stack.prometheusUrl}/alerts      Alertmanager: ${stack.alertmanagerUrl}`
            : `  (${stack.skipped})`,
          ...(haproxy
            ? [
                `  HAProxy:   writes 127.0.0.1:${haproxy.writerPort} (the writer only), reads 127.0.0.1:${haproxy.readerPort}; runtime API ${haproxy.adminSocket}`,
                `             what it reports: curl -s ${url}/metrics | grep 'switchyard_route_state{.*} 1'`,
              ]
            : []),
          '',
          'Try the failover story, in another terminal (paste one line at a time):',
          ...demoStory(join(shown, 'switchyard.yml'), shown),
          '',
          `Ctrl-C stops the daemon; the sandbox keeps running until: npx switchyard sandbox down --dir ${shown}`,
          '',
        ].join('\n'),
      );
      await untilSignal();
      process.stdout.write('stopping the daemon...\n');
      await stack.stop();
      await daemon.stop();
      await haproxy?.stop();
    });
}

/**
 * The newcomer's story as numbered, copy-pasteable commands: kill the writer, watch the failover,
 * bring the old writer back, see it held, take it in, move the writer back, read the journal.
 * The demo test runs exactly these lines.
 */
export function demoStory(configFile: string, dir: string): string[] {
  const steps: Array<[string, string]> = [
    [`show -c ${configFile}`, 'db1 is the writer, db2 and db3 read_only'],
    [`sandbox kill db1 --dir ${dir}`, "kill -9 of the writer's mariadbd"],
    [`show -c ${configFile}`, 'a few seconds later: db1 HARD_OFFLINE, db2 the writer'],
    [`sandbox start db1 --dir ${dir}`, 'db1 comes back, read_only=ON from its my.cnf'],
    [`show -c ${configFile}`, 'db1 is held in AWAITING_RECOVERY: it restarted'],
    [
      `set-online db1 -c ${configFile}`,
      'take db1 in: ONLINE, a reader again, db2 replicates from it',
    ],
    [
      `move-role writer db1 -c ${configFile}`,
      'planned switchover back to db1 (roles.writer.prefer: db1 would do this by itself)',
    ],
    [`journal -c ${configFile}`, 'every decision and action, and why'],
  ];
  const width = Math.max(...steps.map(([command]) => command.length));
  return steps.map(
    ([command, note], index) =>
      `  ${index + 1}. npx switchyard ${command.padEnd(width)}   # ${note}`,
  );
}
