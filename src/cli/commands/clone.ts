import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { cloneHost, CloneRefused } from '../../clone/clone.js';
import { WriterDiscoveryError } from '../../checksum/hosts.js';
import { NotLocalError } from '../../clone/local-host.js';
import { loadConfig } from '../../config/load.js';
import { CliExit, EXIT_FAILED } from '../exit.js';

function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function registerClone(program: Command): void {
  program
    .command('clone')
    .description('rebuild a host from a hot copy of another: stream, prepare, start read-only, replicate from the writer')
    .requiredOption('--from <host>', 'host to copy (keeps serving)')
    .requiredOption('--to <host>', 'host to rebuild (stopped and overwritten; never the writer)')
    .requiredOption('-c, --config <file>', 'config file')
    .option('--no-progress', 'no progress bar')
    .action(async (options: { from: string; to: string; config: string; progress: boolean }) => {
      const config = loadConfig(options.config);
      const bar = options.progress && process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'clone {raw} copied, {wire} on the wire, {rate}/s', stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
      const started = Date.now();
      bar?.start(1, 0, { raw: '0 B', wire: '0 B', rate: '0 B' });
      try {
        const result = await cloneHost(config, options.from, options.to, {
          onProgress: (progress) => {
            const seconds = Math.max(0.001, (Date.now() - started) / 1000);
            bar?.update(0, { raw: humanBytes(progress.rawBytes), wire: humanBytes(progress.compressedBytes), rate: humanBytes(progress.rawBytes / seconds) });
          },
        });
        bar?.stop();
        process.stdout.write(
          `${result.to} cloned from ${result.from} (${humanBytes(result.rawBytes)}, ${humanBytes(result.compressedBytes)} compressed, ${result.seconds.toFixed(1)} s)\n` +
            `  replicating from ${result.source} starting at GTID ${result.gtidPosition}; read_only=ON\n` +
            `  A running daemon sees ${result.to} restart and holds it in AWAITING_RECOVERY; once it has caught up run:\n` +
            `    switchyard set-online ${result.to}\n`,
        );
      } catch (error) {
        bar?.stop();
        if (error instanceof CloneRefused || error instanceof WriterDiscoveryError || error instanceof NotLocalError) throw new CliExit(EXIT_FAILED, `refused: ${error.message}`);
        throw new CliExit(EXIT_FAILED, (error as Error).message);
      }
    });
}
