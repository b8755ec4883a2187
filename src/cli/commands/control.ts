import type { Command } from 'commander';
import { parseDuration } from '../../config/duration.js';
import { MODES } from '../../config/schema.js';
import type { JournalEntry } from '../../journal/journal.js';
import {
  createDaemonClient,
  failOnError,
  withDaemonOptions,
  type ClientOptions,
} from '../client.js';
import { CliExit, EXIT_USAGE } from '../exit.js';

type Answer = { ok?: boolean; detail?: string; steps?: string[] };

function printAnswer(answer: Answer): void {
  process.stdout.write(`${answer.detail ?? 'ok'}\n`);
  for (const step of answer.steps ?? []) process.stdout.write(`  ${step}\n`);
}

export function formatJournalEntry(entry: JournalEntry): string {
  const subject = [entry.host, entry.role].filter(Boolean).join('/') || '-';
  const outcome = entry.outcome ? ` [${entry.outcome}]` : '';
  const text = [entry.reason, entry.detail].filter(Boolean).join(' | ');
  const by = entry.by ? ` (by ${entry.by})` : '';
  return `${new Date(entry.at).toISOString()}  ${entry.phase.padEnd(8)} ${entry.event.padEnd(24)} ${subject.padEnd(12)}${outcome} ${text}${by}`;
}

export function registerControl(program: Command): void {
  withDaemonOptions(
    program
      .command('set-online')
      .description('take a host in (clears AWAITING_RECOVERY and holds)')
      .argument('<host>')
      .option(
        '--accept-errant',
        'keep the transactions the host has and the writer lacks (they are never replicated to the writer); journalled',
      ),
  ).action(async (host: string, options: ClientOptions & { acceptErrant?: boolean }) => {
    if (options.acceptErrant)
      process.stderr.write(
        `warning: --accept-errant puts ${host} online with transactions the writer lacks; they stay on ${host} only\n`,
      );
    const result = await createDaemonClient(options).request<Answer>(
      'POST',
      `/api/v1/hosts/${encodeURIComponent(host)}/online`,
      options.acceptErrant ? { accept_errant: true } : undefined,
    );
    failOnError(result);
    printAnswer(result.body);
  });
  withDaemonOptions(
    program
      .command('set-offline')
      .description('take a host out (ADMIN_OFFLINE); a writer is switched over first')
      .argument('<host>'),
  ).action(async (host: string, options: ClientOptions) => {
    const result = await createDaemonClient(options).request<Answer>(
      'POST',
      `/api/v1/hosts/${encodeURIComponent(host)}/offline`,
    );
    failOnError(result);
    printAnswer(result.body);
  });
  withDaemonOptions(
    program
      .command('move-role')
      .description('planned, safe switchover of a role to a host')
      .argument('<role>')
      .argument('<host>')
      .option(
        '--force',
        'skip only the catch-up wait (transactions not yet applied on the target may be lost)',
      ),
  ).action(async (role: string, host: string, options: ClientOptions & { force?: boolean }) => {
    if (options.force)
      process.stderr.write(
        'warning: --force skips the catch-up wait; writes the target has not applied yet can be lost\n',
      );
    const result = await createDaemonClient(options).request<Answer>(
      'POST',
      `/api/v1/roles/${encodeURIComponent(role)}/move`,
      { host, force: options.force === true },
    );
    failOnError(result);
    printAnswer(result.body);
  });
  withDaemonOptions(
    program
      .command('mode')
      .description(
        'show or set the mode: active acts, passive plans only, manual acts only on operator commands',
      )
      .argument('[mode]'),
  ).action(async (mode: string | undefined, options: ClientOptions) => {
    const client = createDaemonClient(options);
    if (mode === undefined) {
      const result = await client.request<{ mode: string; modeReason?: string }>(
        'GET',
        '/api/v1/status',
      );
      failOnError(result);
      process.stdout.write(
        `${result.body.mode}${result.body.modeReason ? ` (${result.body.modeReason})` : ''}\n`,
      );
      return;
    }
    if (!(MODES as readonly string[]).includes(mode))
      throw new CliExit(EXIT_USAGE, `mode must be one of ${MODES.join(', ')}, not "${mode}"`);
    const result = await client.request<Answer>('PUT', '/api/v1/mode', { mode });
    failOnError(result);
    printAnswer(result.body);
  });
  withDaemonOptions(
    program
      .command('journal')
      .description('the audit journal of decisions and actions')
      .option('--since <duration>', 'only entries newer than this (e.g. 10m, 2h)')
      .option('--limit <n>', 'at most this many (newest)', '100')
      .option('--json', 'print JSON lines')
      .option('-f, --follow', 'keep printing new entries'),
  ).action(
    async (
      options: ClientOptions & { since?: string; limit: string; json?: boolean; follow?: boolean },
    ) => {
      const client = createDaemonClient(options);
      let since: number | undefined;
      if (options.since !== undefined) {
        try {
          since = Date.now() - parseDuration(options.since);
        } catch (error) {
          throw new CliExit(EXIT_USAGE, `--since: ${(error as Error).message}`);
        }
      }
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new CliExit(
          EXIT_USAGE,
          `--limit must be a positive whole number, not "${options.limit}"`,
        );
      let lastSeq = -1;
      for (;;) {
        const query = new URLSearchParams({
          limit: String(limit),
          ...(since !== undefined ? { since: String(since) } : {}),
        });
        const result = await client.request<{ entries: JournalEntry[] }>(
          'GET',
          `/api/v1/journal?${query}`,
        );
        failOnError(result);
        for (const entry of result.body.entries) {
          if (entry.seq <= lastSeq) continue;
          process.stdout.write(
            options.json ? `${JSON.stringify(entry)}\n` : `${formatJournalEntry(entry)}\n`,
          );
          lastSeq = entry.seq;
          since = entry.at;
        }
        if (!options.follow) return;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    },
  );
}
