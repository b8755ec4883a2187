import cliProgress from 'cli-progress';
import type { TransferProgress } from '../transfer/reseed.js';
import { humanBytes } from '../transfer/stream-tools.js';
import { parseByteRate } from '../transfer/stream-tools.js';
import {
  createDaemonClient,
  failOnError,
  type ClientOptions,
  type DaemonClient,
} from './client.js';
import { CliExit, EXIT_FAILED, EXIT_USAGE } from './exit.js';

export interface JobView {
  id: string;
  operation: string;
  done: boolean;
  ok: boolean | null;
  progress: TransferProgress;
  result: {
    to: string;
    from: string;
    writer: string;
    gtidPosition: string;
    rawBytes: number;
    wireBytes: number;
    seconds: number;
    detail: string;
  } | null;
  error: string | null;
  notes: string[];
}

function eta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '-';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** --json: JSON lines; --no-progress: nothing until the end; otherwise a bar on a terminal, JSON lines when stderr is not one. */
export function progressMode(options: {
  json?: boolean;
  progress: boolean;
}): 'bar' | 'lines' | 'none' {
  if (options.json) return 'lines';
  if (!options.progress) return 'none';
  return process.stderr.isTTY === true ? 'bar' : 'lines';
}

/**
 * Follows a transfer job of the daemon until it ends, showing bytes, rate and ETA as a progress
 * bar or as one JSON line per change.
 */
export async function followTransfer(
  client: DaemonClient,
  first: JobView,
  options: { mode: 'bar' | 'lines' | 'none'; pollMs?: number },
): Promise<JobView> {
  const bar =
    options.mode === 'bar'
      ? new cliProgress.SingleBar(
          {
            format: `${first.operation} {from} -> {to} [{bar}] {percentage}% | {copied} of {size} | {speed}/s | ETA {left} | {phase}`,
            stream: process.stderr,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  const payload = (progress: TransferProgress) => ({
    from: progress.from,
    to: progress.to,
    copied: humanBytes(progress.rawBytes),
    size: humanBytes(progress.estimatedBytes),
    speed: humanBytes(progress.rate),
    left: eta(progress.etaSeconds),
    phase: progress.phase,
  });
  bar?.start(Math.max(1, first.progress.estimatedBytes), 0, payload(first.progress));
  let job = first;
  let lastLine = '';
  try {
    for (;;) {
      if (bar) {
        bar.setTotal(Math.max(1, job.progress.estimatedBytes, job.progress.rawBytes));
        bar.update(job.progress.rawBytes, payload(job.progress));
      } else if (options.mode === 'lines') {
        const line = JSON.stringify({
          id: job.id,
          operation: job.operation,
          phase: job.progress.phase,
          raw_bytes: job.progress.rawBytes,
          wire_bytes: job.progress.wireBytes,
          estimated_bytes: job.progress.estimatedBytes,
          rate: Math.round(job.progress.rate),
          eta_seconds:
            job.progress.etaSeconds === undefined ? null : Math.round(job.progress.etaSeconds),
        });
        if (line !== lastLine) process.stdout.write(`${line}\n`);
        lastLine = line;
      }
      if (job.done) return job;
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
      const answer = await client.request<JobView>('GET', `/api/v1/transfers/${job.id}`);
      if (answer.status !== 200)
        throw new CliExit(
          EXIT_FAILED,
          `lost the transfer ${job.id}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`,
        );
      job = answer.body;
    }
  } finally {
    bar?.stop();
  }
}

/** Final report of a followed job; throws CliExit(1) when it failed. */
export function reportTransfer(job: JobView, json: boolean): void {
  if (json)
    process.stdout.write(
      `${JSON.stringify({ id: job.id, operation: job.operation, ok: job.ok, result: job.result, error: job.error, notes: job.notes })}\n`,
    );
  if (!job.ok) throw new CliExit(EXIT_FAILED, job.error ?? 'the transfer failed');
  if (json || !job.result) return;
  const result = job.result;
  const what =
    job.operation === 'backup'
      ? `${result.from} backed up`
      : job.operation === 'restore'
        ? `${result.to} restored from ${result.from}`
        : `${result.to} reseeded from ${result.from}`;
  process.stdout.write(
    `${what} (${humanBytes(result.rawBytes)}, ${humanBytes(result.wireBytes)} on the wire, ${result.seconds.toFixed(1)} s)\n` +
      `  ${result.detail}\n` +
      job.notes.map((note) => `  ${note}\n`).join(''),
  );
}

/** --rate-limit as bytes per second; a bad value is a usage error naming the option. */
export function rateLimitOption(text: string | undefined): number | undefined {
  try {
    return text === undefined ? undefined : parseByteRate(text);
  } catch (error) {
    throw new CliExit(EXIT_USAGE, `--rate-limit: ${(error as Error).message}`);
  }
}

/**
 * Starts a transfer job on the daemon (clone, backup, restore), follows it to the end and reports
 * it. A refusal (409) exits 1 and says that nothing was changed.
 */
export async function runTransferJob(
  options: ClientOptions & { json?: boolean; progress: boolean },
  path: string,
  body: Record<string, unknown>,
): Promise<JobView> {
  const client = createDaemonClient(options);
  const answer = await client.request<JobView>('POST', path, body);
  if (answer.status === 409)
    throw new CliExit(
      EXIT_FAILED,
      `refused: ${(answer.body as unknown as { detail?: string }).detail ?? ''} (nothing was changed)`,
    );
  failOnError(answer);
  const job = await followTransfer(client, answer.body, { mode: progressMode(options) });
  reportTransfer(job, options.json === true);
  return job;
}
