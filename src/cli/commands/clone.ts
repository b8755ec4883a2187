import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { cloneHost, CloneRefused } from '../../clone/clone.js';
import { WriterDiscoveryError } from '../../checksum/hosts.js';
import { NotLocalError } from '../../clone/local-host.js';
import { loadClusterConfig } from '../../config/conf-dir.js';
import { MANIFEST } from '../../sandbox/cluster.js';
import { humanBytes } from '../../transfer/stream-tools.js';
import { withDaemonOptions } from '../client.js';
import { CliExit, EXIT_FAILED, EXIT_USAGE } from '../exit.js';
import { rateLimitOption, runTransferJob } from '../transfer-follow.js';

interface CloneOptions {
  cluster?: string;
  from: string;
  to: string;
  config?: string;
  url?: string;
  tokenFile?: string;
  progress: boolean;
  json?: boolean;
  rateLimit?: string;
}

/** Hosts of a local sandbox are handled directly; everything else goes through the daemon and the agents. */
export function isSandbox(config: string | undefined): boolean {
  return config !== undefined && existsSync(join(dirname(config), MANIFEST));
}

export function registerClone(program: Command): void {
  withDaemonOptions(
    program
      .command('clone')
      .description(
        'rebuild a host from a hot copy of another, agent to agent: stream, prepare, swap, start read-only, replicate from the writer',
      )
      .requiredOption('--from <host>', 'host to copy (keeps serving)')
      .requiredOption(
        '--to <host>',
        'host to rebuild (ADMIN_OFFLINE or AWAITING_RECOVERY; never the writer)',
      )
      .option(
        '--rate-limit <rate>',
        'cap on the copy stream, bytes per second (K, M, G suffixes), e.g. 50M',
      )
      .option('--json', 'progress and result as JSON lines on stdout')
      .option('--no-progress', 'no progress bar'),
  ).action(async (options: CloneOptions) => {
    const rateLimit = rateLimitOption(options.rateLimit);
    if (isSandbox(options.config)) return cloneSandbox(options, rateLimit);
    await runTransferJob(options, '/api/v1/transfers', {
      from: options.from,
      to: options.to,
      ...(rateLimit ? { rate_limit: rateLimit } : {}),
    });
    if (!options.json)
      process.stdout.write(
        `  The daemon holds ${options.to} in AWAITING_RECOVERY; once it has caught up run: switchyard set-online ${options.to}\n`,
      );
  });
}

async function cloneSandbox(options: CloneOptions, rateLimit: number | undefined): Promise<void> {
  if (rateLimit !== undefined)
    throw new CliExit(
      EXIT_USAGE,
      '--rate-limit applies to clones between agents, not to sandbox hosts',
    );
  const config = loadClusterConfig(options.config as string, options.cluster);
  const bar =
    options.progress && !options.json && process.stderr.isTTY
      ? new cliProgress.SingleBar(
          { format: 'clone {raw} copied, {wire} on the wire, {rate}/s', stream: process.stderr },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  const started = Date.now();
  bar?.start(1, 0, { raw: '0 B', wire: '0 B', rate: '0 B' });
  try {
    const result = await cloneHost(config, options.from, options.to, {
      onProgress: (progress) => {
        const seconds = Math.max(0.001, (Date.now() - started) / 1000);
        bar?.update(0, {
          raw: humanBytes(progress.rawBytes),
          wire: humanBytes(progress.compressedBytes),
          rate: humanBytes(progress.rawBytes / seconds),
        });
        if (options.json)
          process.stdout.write(
            `${JSON.stringify({ raw_bytes: progress.rawBytes, wire_bytes: progress.compressedBytes, rate: Math.round(progress.rawBytes / seconds) })}\n`,
          );
      },
    });
    bar?.stop();
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ ok: true, result })}\n`);
      return;
    }
    process.stdout.write(
      `${result.to} cloned from ${result.from} (${humanBytes(result.rawBytes)}, ${humanBytes(result.compressedBytes)} compressed, ${result.seconds.toFixed(1)} s)\n` +
        `  replicating from ${result.source} starting at GTID ${result.gtidPosition}; read_only=ON\n` +
        `  A running daemon sees ${result.to} restart and holds it in AWAITING_RECOVERY; once it has caught up run:\n` +
        `    switchyard set-online ${result.to}\n`,
    );
  } catch (error) {
    bar?.stop();
    if (
      error instanceof CloneRefused ||
      error instanceof WriterDiscoveryError ||
      error instanceof NotLocalError
    )
      throw new CliExit(EXIT_FAILED, `refused: ${error.message}`);
    throw new CliExit(EXIT_FAILED, (error as Error).message);
  }
}
