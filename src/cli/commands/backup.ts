import type { Command } from 'commander';
import { listBackups, takeBackup } from '../../backup/backup.js';
import { NotLocalError } from '../../clone/local-host.js';
import { loadConfig } from '../../config/load.js';
import { withDaemonOptions } from '../client.js';
import { CliExit, EXIT_FAILED, EXIT_USAGE } from '../exit.js';
import { createProgress } from '../progress.js';
import { rateLimitOption, runTransferJob } from '../transfer-follow.js';
import { isSandbox } from './clone.js';

interface BackupOptions {
  config?: string;
  url?: string;
  tokenFile?: string;
  incremental?: boolean;
  list?: boolean;
  json?: boolean;
  progress: boolean;
  rateLimit?: string;
  toAgent?: string;
}

export function registerBackup(program: Command): void {
  withDaemonOptions(
    program
      .command('backup')
      .description(
        'back a host up into backup.dir/<host>/<timestamp>-full|inc (sandbox hosts directly, real hosts streamed from their agent through the daemon), or --list the backups',
      )
      .argument('[host]', 'host to back up')
      .option('--incremental', 'on top of the newest backup of this host (sandbox hosts)')
      .option('--list', 'list backups instead of taking one')
      .option(
        '--to-agent <host>',
        "real hosts: into that host's agent (its snapshot.backup_dir) instead of the manager's backup.dir",
      )
      .option(
        '--rate-limit <rate>',
        "cap on the stream from the host's agent, bytes per second (K, M, G suffixes), e.g. 50M",
      )
      .option('--json', 'print JSON (and progress as JSON lines)')
      .option('--no-progress', 'no progress bar or progress lines'),
  ).action(async (host: string | undefined, options: BackupOptions) => {
    if (options.list) {
      if (!options.config) throw new CliExit(EXIT_USAGE, '--list reads backup.dir: give -c');
      const config = loadConfig(options.config);
      if (!config.backup)
        throw new CliExit(EXIT_USAGE, `${options.config} has no "backup" section (backup.dir)`);
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
    if (isSandbox(options.config)) {
      if (options.toAgent !== undefined)
        throw new CliExit(EXIT_USAGE, '--to-agent applies to hosts with agents, not to a sandbox');
      return backupSandbox(host, options);
    }
    if (options.incremental)
      throw new CliExit(
        EXIT_USAGE,
        '--incremental applies to sandbox hosts; a backup through the agents is always full',
      );
    const rateLimit = rateLimitOption(options.rateLimit);
    await runTransferJob(options, '/api/v1/backups', {
      host,
      ...(options.toAgent ? { to_agent: options.toAgent } : {}),
      ...(rateLimit ? { rate_limit: rateLimit } : {}),
    });
  });
}

async function backupSandbox(host: string, options: BackupOptions): Promise<void> {
  if (options.rateLimit !== undefined)
    throw new CliExit(EXIT_USAGE, '--rate-limit applies to backups through the agents');
  const config = loadConfig(options.config as string);
  if (!config.backup)
    throw new CliExit(EXIT_USAGE, `${options.config} has no "backup" section (backup.dir)`);
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
}

const mebibytes = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
