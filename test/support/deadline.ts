import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Daemon } from '../../src/daemon/daemon.js';

/**
 * An await that must end: a test waiting on an engine call that never returns would otherwise sit
 * until the runner's file timeout (600 s) and end with nothing but "timed out". This one fails
 * after `ms` with what was going on (`explain`), so a hang reads like a failure with a cause.
 */
export async function within<T>(
  ms: number,
  what: string,
  work: Promise<T>,
  explain: () => string = () => '',
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      let context: string;
      try {
        context = explain();
      } catch (error) {
        context = `(could not explain: ${(error as Error).message})`;
      }
      reject(new Error(`${what} did not end within ${ms} ms${context ? `\n${context}` : ''}`));
    }, ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a manager was doing: its in-flight operation, the journal's tail and its log's tail. */
export function describeDaemon(daemon: Daemon, logFile?: string, lines = 25): string {
  const status = daemon.status() as { operation?: unknown };
  const journal = daemon.journal
    .read()
    .slice(-lines)
    .map(
      (entry) =>
        `${entry.at} ${entry.phase} ${entry.event} ${entry.host ?? ''} ${entry.outcome ?? ''} ${(entry.reason ?? entry.detail ?? '').slice(0, 160)}`,
    );
  const log = logFile ? logTail(logFile, lines).split('\n') : [];
  return [
    `operation: ${JSON.stringify(status.operation ?? null)}`,
    'journal:',
    ...journal,
    ...(logFile ? ['log:', ...log.map((line) => line.slice(0, 400))] : []),
  ].join('\n');
}

/** The last `lines` lines of a log file, or why it could not be read. */
export function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (error) {
    return `(no log: ${(error as Error).message})`;
  }
}

/**
 * The failure of `work` (a wait on a process the test spawned) with what that process said: its
 * exit, if it ended, and the end of its log. A manager that could not bind its listener, or
 * exited at start, otherwise shows only as a timeout.
 */
export async function explainedBy<T>(
  work: Promise<T>,
  logFile: string,
  child?: ChildProcess,
): Promise<T> {
  try {
    return await work;
  } catch (error) {
    const ended =
      child?.exitCode !== null && child?.exitCode !== undefined
        ? ` (it exited with code ${child.exitCode})`
        : child?.signalCode
          ? ` (it was killed by ${child.signalCode})`
          : '';
    throw new Error(
      `${(error as Error).message}${ended}; the end of ${logFile}:\n${logTail(logFile)}`,
      { cause: error },
    );
  }
}
