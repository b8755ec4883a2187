import type { Command } from 'commander';
import { restoreBackup, RestoreRefused } from '../../backup/backup.js';
import { WriterDiscoveryError } from '../../checksum/hosts.js';
import { loadConfig } from '../../config/load.js';
import { CliExit, EXIT_FAILED } from '../exit.js';

export function registerRestore(program: Command): void {
  program
    .command('restore')
    .description('restore a (non-writer) host from a backup directory, then point it at the writer')
    .argument('<host>', 'host to restore (stopped and overwritten)')
    .requiredOption('--from <dir>', 'backup directory (an incremental pulls in its chain)')
    .requiredOption('-c, --config <file>', 'config file')
    .action(async (host: string, options: { from: string; config: string }) => {
      const config = loadConfig(options.config);
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
    });
}
