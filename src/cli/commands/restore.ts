import type { Command } from 'commander';
import { restoreBackup, RestoreRefused } from '../../backup/backup.js';
import { WriterDiscoveryError } from '../../checksum/hosts.js';
import { loadClusterConfig } from '../../config/conf-dir.js';
import { withDaemonOptions } from '../client.js';
import { CliExit, EXIT_FAILED, EXIT_USAGE } from '../exit.js';
import { rateLimitOption, runTransferJob } from '../transfer-follow.js';
import { isSandbox } from './clone.js';

interface RestoreOptions {
  cluster?: string;
  from?: string;
  backup?: string;
  fromAgent?: string;
  config?: string;
  url?: string;
  tokenFile?: string;
  rateLimit?: string;
  json?: boolean;
  progress: boolean;
}

export function registerRestore(program: Command): void {
  withDaemonOptions(
    program
      .command('restore')
      .description(
        "restore a (non-writer) host from a backup, then point it at the writer: sandbox hosts from a backup directory (--from), real hosts through their agent from the daemon's backup.dir (--backup)",
      )
      .argument('<host>', 'host to restore (stopped and overwritten)')
      .option('--from <dir>', 'sandbox hosts: backup directory (an incremental pulls in its chain)')
      .option(
        '--backup <id>',
        'real hosts: <host>/<directory> under backup.dir, as backup --list shows (default: the newest full backup)',
      )
      .option(
        '--from-agent <host>',
        "real hosts: the backup is kept by that host's agent (snapshot.backup_dir, from backup --to-agent); needs --backup",
      )
      .option(
        '--rate-limit <rate>',
        'real hosts: cap on the stream to the agent, bytes per second (K, M, G suffixes)',
      )
      .option('--json', 'progress and result as JSON lines on stdout')
      .option('--no-progress', 'no progress bar'),
  ).action(async (host: string, options: RestoreOptions) => {
    if (isSandbox(options.config)) return restoreSandbox(host, options);
    if (options.from !== undefined)
      throw new CliExit(
        EXIT_USAGE,
        "--from names a backup directory of a sandbox; for hosts with agents use --backup <host>/<directory> from the daemon's backup.dir",
      );
    const rateLimit = rateLimitOption(options.rateLimit);
    await runTransferJob(options, '/api/v1/restores', {
      host,
      ...(options.backup ? { backup: options.backup } : {}),
      ...(options.fromAgent ? { from_agent: options.fromAgent } : {}),
      ...(rateLimit ? { rate_limit: rateLimit } : {}),
    });
    if (!options.json)
      process.stdout.write(
        `  ${host} stays out of service (ADMIN_OFFLINE or AWAITING_RECOVERY); once it has caught up run: switchyard set-online ${host}\n`,
      );
  });
}

async function restoreSandbox(host: string, options: RestoreOptions): Promise<void> {
  if (options.from === undefined)
    throw new CliExit(
      EXIT_USAGE,
      'sandbox hosts are restored from a backup directory: give --from <dir>',
    );
  if (
    options.backup !== undefined ||
    options.fromAgent !== undefined ||
    options.rateLimit !== undefined
  )
    throw new CliExit(
      EXIT_USAGE,
      '--backup, --from-agent and --rate-limit apply to restores through the agents',
    );
  const config = loadClusterConfig(options.config as string, options.cluster);
  try {
    const result = await restoreBackup(config, host, options.from);
    process.stdout.write(
      `${host} restored at GTID ${result.gtidPosition}, replicating from ${result.replicatingFrom}, read_only=ON\n` +
        `  previous datadir kept at ${result.aside} (remove it when satisfied)\n` +
        `  A running daemon holds ${host} in AWAITING_RECOVERY; once caught up run: switchyard set-online ${host}\n`,
    );
  } catch (error) {
    if (error instanceof RestoreRefused || error instanceof WriterDiscoveryError)
      throw new CliExit(EXIT_FAILED, `refused: ${error.message}`);
    throw new CliExit(EXIT_FAILED, (error as Error).message);
  }
}
