import type { Command } from 'commander';
import { backupRoot, takeBackup } from '../../backup/backup.js';
import { readCatalogue } from '../../backup/catalogue.js';
import { describePrune, localCatalogue, pruneBackups } from '../../backup/prune.js';
import {
  MANAGER_CATALOGUE,
  retentionPolicy,
  type FleetListing,
} from '../../transfer/backup-catalogues.js';
import { renderBackupList } from '../backup-list.js';
import { useColour } from '../table.js';
import { NotLocalError } from '../../clone/local-host.js';
import { loadClusterConfig } from '../../config/conf-dir.js';
import { createDaemonClient, failOnError, withDaemonOptions } from '../client.js';
import { CliExit, EXIT_FAILED, EXIT_USAGE } from '../exit.js';
import { createProgress } from '../progress.js';
import { rateLimitOption, runTransferJob } from '../transfer-follow.js';
import { isSandbox } from './clone.js';

interface BackupOptions {
  cluster?: string;
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
      .argument('[host]', 'host to back up (with --list: list only its backups)')
      .option('--incremental', 'on top of the newest backup of this host (sandbox hosts)')
      .option(
        '--list',
        "list the backups (of HOST only when given) kept by the manager's backup.dir and every agent's snapshot.backup_dir, instead of taking one",
      )
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
    if (options.list) return listAllBackups(host, options);
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

/**
 * Real hosts: the daemon lists its backup.dir and asks every agent (GET /api/v1/backups). A
 * sandbox has no daemon to ask: its backup.dir is read here. Exit 1 when a catalogue could not be
 * listed: the table is then incomplete.
 */
async function listAllBackups(host: string | undefined, options: BackupOptions): Promise<void> {
  let listing: FleetListing;
  if (isSandbox(options.config)) {
    const config = loadClusterConfig(options.config as string, options.cluster);
    if (!config.backup)
      throw new CliExit(EXIT_USAGE, `${options.config} has no "backup" section (backup.dir)`);
    const root = backupRoot(config);
    const { entries, problems } = readCatalogue(root, host);
    listing = {
      backups: entries.map((entry) => ({ ...entry, keptBy: MANAGER_CATALOGUE })),
      sources: [
        {
          keptBy: MANAGER_CATALOGUE,
          ok: problems.length === 0,
          dir: root,
          count: entries.length,
          ...(problems.length > 0
            ? { error: problems.map((problem) => `${problem.id}: ${problem.error}`).join('; ') }
            : {}),
        },
      ],
    };
  } else {
    const client = createDaemonClient(options);
    const result = await client.request<FleetListing>(
      'GET',
      `/api/v1/backups${host === undefined ? '' : `?host=${encodeURIComponent(host)}`}`,
    );
    failOnError(result);
    listing = result.body;
  }
  process.stdout.write(
    options.json ? `${JSON.stringify(listing, null, 2)}\n` : renderBackupList(listing, useColour()),
  );
  const failed = listing.sources.filter((source) => !source.ok);
  if (failed.length > 0)
    throw new CliExit(
      EXIT_FAILED,
      `the list is incomplete: ${failed.map((source) => source.keptBy).join(', ')} could not be listed`,
    );
}

async function backupSandbox(host: string, options: BackupOptions): Promise<void> {
  if (options.rateLimit !== undefined)
    throw new CliExit(EXIT_USAGE, '--rate-limit applies to backups through the agents');
  const config = loadClusterConfig(options.config as string, options.cluster);
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
    // Retention after the backup, as the daemon does after its own; it never fails the backup.
    const pruned = describePrune(
      await pruneBackups(
        localCatalogue(backupRoot(config), MANAGER_CATALOGUE),
        host,
        retentionPolicy(config),
      ),
    );
    if (pruned) process.stderr.write(`${pruned}\n`);
  } catch (error) {
    progress.stop();
    throw new CliExit(
      error instanceof NotLocalError ? EXIT_USAGE : EXIT_FAILED,
      (error as Error).message,
    );
  }
}

const mebibytes = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
