import type { Command } from 'commander';
import {
  sandboxDown,
  sandboxHost,
  sandboxStatus,
  sandboxUp,
  type HostAction,
} from '../../sandbox/cluster.js';
import { CliExit, EXIT_FAILED, EXIT_USAGE } from '../exit.js';
import { createTable, paint, useColour } from '../table.js';

export const DEFAULT_SANDBOX_DIR = './switchyard-sandbox';

function integer(name: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed))
      throw new CliExit(EXIT_USAGE, `${name} must be a whole number, not "${value}"`);
    return parsed;
  };
}

export function registerSandbox(program: Command): void {
  const sandbox = program
    .command('sandbox')
    .description('a local MariaDB cluster on loopback ports for trying things out');
  sandbox
    .command('up')
    .description('create and start the sandbox cluster and write its switchyard.yml')
    .option('--dir <dir>', 'sandbox directory', DEFAULT_SANDBOX_DIR)
    .option(
      '--masters <n>',
      'masters (1 or 2; two are wired master-master)',
      integer('--masters'),
      2,
    )
    .option('--replicas <n>', 'replicas under the first master', integer('--replicas'), 1)
    .option(
      '--base-port <port>',
      'port of the first instance; the others follow',
      integer('--base-port'),
      13306,
    )
    .option(
      '--listen-port <port>',
      'port for the daemon in the generated config (default: base port + 100)',
      integer('--listen-port'),
    )
    .action(
      async (options: {
        dir: string;
        masters: number;
        replicas: number;
        basePort: number;
        listenPort?: number;
      }) => {
        try {
          const manifest = await sandboxUp({
            ...options,
            onProgress: (message) => process.stdout.write(`${message}\n`),
          });
          process.stdout.write(
            `sandbox ready: ${manifest.hosts.map((host) => `${host.name}=127.0.0.1:${host.port}`).join(' ')}\n`,
          );
          process.stdout.write(`config: ${manifest.configFile}\n`);
        } catch (error) {
          throw new CliExit(EXIT_FAILED, `sandbox up failed: ${(error as Error).message}`);
        }
      },
    );
  sandbox
    .command('status')
    .description('show each sandbox instance')
    .option('--dir <dir>', 'sandbox directory', DEFAULT_SANDBOX_DIR)
    .option('--json', 'print JSON')
    .action(async (options: { dir: string; json?: boolean }) => {
      let statuses;
      try {
        statuses = await sandboxStatus(options.dir);
      } catch (error) {
        throw new CliExit(EXIT_FAILED, (error as Error).message);
      }
      if (options.json) {
        process.stdout.write(`${JSON.stringify(statuses, null, 2)}\n`);
        return;
      }
      const colour = useColour();
      const table = createTable(
        ['host', 'port', 'kind', 'running', 'pid', 'read_only', 'replication'],
        colour,
      );
      for (const status of statuses) {
        table.push([
          status.name,
          status.port,
          status.role,
          status.running ? 'yes' : paint(colour, 'red', 'NO'),
          status.pid ?? '-',
          status.readOnly === undefined ? '-' : status.readOnly ? 'ON' : 'OFF',
          status.replication ?? '-',
        ]);
      }
      process.stdout.write(`${table.toString()}\n`);
      if (statuses.some((status) => !status.running)) process.exitCode = EXIT_FAILED;
    });
  const hostActions: Array<[HostAction, string, (host: string, pid?: number) => string]> = [
    [
      'stop',
      'shut one host down cleanly (SIGTERM, then wait for it to exit)',
      (host, pid) => `${host} stopped (pid ${pid})`,
    ],
    [
      'kill',
      "kill -9 one host's mariadbd: the crash a failover must survive",
      (host, pid) => `${host} killed (SIGKILL to pid ${pid})`,
    ],
    [
      'start',
      'start one host again with its own my.cnf (read_only=ON) and wait until it answers',
      (host, pid) =>
        `${host} running again (pid ${pid}), read_only=ON until Switchyard gives it a role`,
    ],
  ];
  for (const [action, description, done] of hostActions) {
    sandbox
      .command(action)
      .description(description)
      .argument('<host>', 'sandbox host name, e.g. db1')
      .option('--dir <dir>', 'sandbox directory', DEFAULT_SANDBOX_DIR)
      .action(async (host: string, options: { dir: string }) => {
        let pid: number | undefined;
        try {
          ({ pid } = await sandboxHost(options.dir, host, action));
        } catch (error) {
          throw new CliExit(EXIT_FAILED, `sandbox ${action} ${host}: ${(error as Error).message}`);
        }
        process.stdout.write(`${done(host, pid)}\n`);
      });
  }
  sandbox
    .command('down')
    .description('stop every sandbox instance and remove the directory')
    .option('--dir <dir>', 'sandbox directory', DEFAULT_SANDBOX_DIR)
    .action(async (options: { dir: string }) => {
      try {
        await sandboxDown(options.dir);
      } catch (error) {
        throw new CliExit(EXIT_FAILED, (error as Error).message);
      }
      process.stdout.write(`sandbox in ${options.dir} stopped and removed\n`);
    });
}
