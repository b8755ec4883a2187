import type { Command } from 'commander';
import { listBackups, takeBackup } from '../../backup/backup.js';
import { NotLocalError } from '../../clone/local-host.js';
import { loadConfig } from '../../config/load.js';
import { CliExit, EXIT_FAILED, EXIT_USAGE } from '../exit.js';
import { createProgress } from '../progress.js';

export function registerBackup(program: Command): void {
  program
    .command('backup')
    .description(
      'mariabackup of a host into backup.dir/<host>/<timestamp>-full|inc, or --list the backups',
    )
    .argument('[host]', 'host to back up')
    .requiredOption('-c, --config <file>', 'config file')
    .option('--incremental', 'on top of the newest backup of this host')
    .option('--list', 'list backups instead of taking one')
    .option('--json', 'print JSON (and progress as JSON lines on stderr)')
    .option('--no-progress', 'no progress bar or progress lines')
    .action(
      async (
        host: string | undefined,
        options: {
          config: string;
          incremental?: boolean;
          list?: boolean;
          json?: boolean;
          progress: boolean;
        },
      ) => {
        const config = loadConfig(options.config);
        if (!config.backup)
          throw new CliExit(EXIT_USAGE, `${options.config} has no "backup" section (backup.dir)`);
        if (options.list) {
          const backups = listBackups(config, host);
          if (options.json) process.stdout.write(`${JSON.stringify(backups, null, 2)}\n`);
          else if (backups.length === 0) process.stdout.write('no backups\n');
          else
            for (const backup of backups)
              process.stdout.write(
                `${backup.host}  ${backup.kind.padEnd(11)}  ${backup.createdAt}  gtid ${backup.gtidPosition || '-'}  ${(backup.sizeBytes / 1048576).toFixed(1)} MiB  ${backup.path}\n`,
              );
          return;
        }
        if (!host) throw new CliExit(EXIT_USAGE, 'name the host to back up (or use --list)');
        const progress = createProgress({
          kind: 'backup',
          unit: 'bytes',
          json: options.json === true,
          enabled: options.progress,
          format: 'backup {host} |{bar}| {copied} of ~{estimate} | ETA {eta_formatted}',
        });
        try {
          const info = await takeBackup(
            config,
            host,
            { incremental: options.incremental },
            {
              onProgress: ({ bytes, totalBytes }) =>
                progress.update(bytes, totalBytes, {
                  host,
                  copied: mebibytes(bytes),
                  estimate: totalBytes > 0 ? mebibytes(totalBytes) : '?',
                }),
            },
          );
          progress.stop();
          process.stdout.write(
            options.json
              ? `${JSON.stringify(info, null, 2)}\n`
              : `${info.kind} backup of ${host} at GTID ${info.gtidPosition || '-'}: ${info.path}\n`,
          );
        } catch (error) {
          progress.stop();
          throw new CliExit(
            error instanceof NotLocalError ? EXIT_USAGE : EXIT_FAILED,
            (error as Error).message,
          );
        }
      },
    );
}

const mebibytes = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
