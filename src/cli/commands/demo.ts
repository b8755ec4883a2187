import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { sandboxStatus, sandboxUp } from '../../sandbox/cluster.js';
import { CliExit, EXIT_FAILED } from '../exit.js';
import { DEFAULT_SANDBOX_DIR } from './sandbox.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description("the newcomer's first command: a sandbox cluster on loopback ports, then what to try")
    .option('--dir <dir>', 'sandbox directory', DEFAULT_SANDBOX_DIR)
    .action(async (options: { dir: string }) => {
      const dir = resolve(options.dir);
      try {
        if (!existsSync(join(dir, 'sandbox.json'))) {
          await sandboxUp({ dir, masters: 2, replicas: 1, basePort: 13306, onProgress: (message) => process.stdout.write(`${message}\n`) });
        } else {
          process.stdout.write(`reusing the sandbox in ${dir}\n`);
        }
        const statuses = await sandboxStatus(dir);
        for (const status of statuses) {
          process.stdout.write(
            `  ${status.name}  127.0.0.1:${status.port}  ${status.role.padEnd(7)}  ${status.running ? 'running' : 'STOPPED'}  read_only=${status.readOnly === undefined ? '?' : status.readOnly ? 'ON' : 'OFF'}  replication: ${status.replication ?? '-'}\n`,
          );
        }
      } catch (error) {
        throw new CliExit(EXIT_FAILED, `demo failed: ${(error as Error).message}`);
      }
      process.stdout.write(
        [
          '',
          'Next:',
          `  switchyard config check -c ${join(options.dir, 'switchyard.yml')}`,
          `  switchyard sandbox status --dir ${options.dir}`,
          `  switchyard sandbox down --dir ${options.dir}     # stop and remove everything`,
          '',
        ].join('\n'),
      );
    });
}
