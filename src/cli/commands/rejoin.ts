import type { Command } from 'commander';
import { createDaemonClient, failOnError, withDaemonOptions } from '../client.js';
import { CliExit, EXIT_FAILED } from '../exit.js';
import { followTransfer, progressMode, reportTransfer, type JobView } from '../transfer-follow.js';

export function registerRejoin(program: Command): void {
  withDaemonOptions(
    program
      .command('rejoin')
      .description(
        'bring a host in AWAITING_RECOVERY back as a replica; a diverged old writer is reseeded, its errant events saved first',
      )
      .argument('<host>', 'host to bring back')
      .option(
        '--discard-errant',
        'the host has transactions the writer lacks: save them under backup.dir, then reseed the host from a replica',
      )
      .option(
        '--from <host>',
        'reseed from this host (default: the most advanced ONLINE replica; the writer only when named here)',
      )
      .option('--json', 'progress and result as JSON lines on stdout')
      .option('--no-progress', 'no progress bar'),
  ).action(
    async (
      host: string,
      options: {
        discardErrant?: boolean;
        from?: string;
        json?: boolean;
        progress: boolean;
        url?: string;
        tokenFile?: string;
        config?: string;
      },
    ) => {
      const client = createDaemonClient(options);
      const answer = await client.request<
        JobView & { detail?: string; errant?: string[]; errant_file?: string }
      >('POST', `/api/v1/hosts/${encodeURIComponent(host)}/rejoin`, {
        discard_errant: options.discardErrant === true,
        ...(options.from ? { from: options.from } : {}),
      });
      if (answer.status === 409)
        throw new CliExit(EXIT_FAILED, `refused: ${answer.body.detail ?? ''}`);
      failOnError(answer);
      if (answer.status === 200) {
        process.stdout.write(
          options.json ? `${JSON.stringify(answer.body)}\n` : `${answer.body.detail}\n`,
        );
        return;
      }
      if (!options.json)
        process.stdout.write(
          `${host} has errant transactions ${(answer.body.errant ?? []).join(', ')}; saved to ${answer.body.errant_file}\n  reseeding ${host} from ${answer.body.progress.from}\n`,
        );
      else
        process.stdout.write(
          `${JSON.stringify({ errant: answer.body.errant, errant_file: answer.body.errant_file, from: answer.body.progress.from })}\n`,
        );
      const job = await followTransfer(client, answer.body, { mode: progressMode(options) });
      reportTransfer(job, options.json === true);
    },
  );
}
