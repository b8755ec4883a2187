import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { readSecret } from '../../src/config/secrets.js';
import type { LoadedConfig } from '../../src/config/load.js';
import type { JournalEntry } from '../../src/journal/journal.js';

const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;

export interface ManagerProcess {
  name: string;
  config: LoadedConfig;
  url: string;
  logFile: string;
  child?: ChildProcess;
  start(): void;
  kill(signal?: NodeJS.Signals): Promise<void>;
  alive(): boolean;
  /** GET /metrics -> switchyard_leader value (undefined: not answering). */
  leader(): Promise<number | undefined>;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  journal(): JournalEntry[];
}

/**
 * A manager as a child process (`switchyard run -c FILE`), SIGKILLed when the test ends; `env`
 * is added to its environment (e.g. SWITCHYARD_PROTOCOL=1: a manager of the previous protocol).
 */
export function managerProcess(
  t: TestContext,
  name: string,
  config: LoadedConfig,
  env?: Record<string, string>,
): ManagerProcess {
  const token = readSecret({ file: config.auth.token_file, env: config.auth.token_env }, 'token');
  const url = `http://${config.listen}`;
  const logFile = join(config.state_dir, '..', `${name}.log`);
  const manager: ManagerProcess = {
    name,
    config,
    url,
    logFile,
    start() {
      const log = openSync(logFile, 'a');
      manager.child = spawn(process.execPath, [CLI, 'run', '-c', config.source], {
        stdio: ['ignore', log, log],
        env: { ...process.env, ...env },
      });
      closeSync(log);
    },
    async kill(signal = 'SIGKILL') {
      const child = manager.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGCONT');
      child.kill(signal);
      await exited;
    },
    alive() {
      const child = manager.child;
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async leader() {
      try {
        const text = await (
          await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(1000) })
        ).text();
        const line = text.split('\n').find((entry) => entry.startsWith('switchyard_leader{'));
        return line ? Number(line.split(' ').pop()) : undefined;
      } catch {
        return undefined;
      }
    },
    async api(method, path, body) {
      const response = await fetch(`${url}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(5000),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // keep the text
      }
      return { status: response.status, body: parsed };
    },
    journal() {
      const file = join(config.state_dir, 'journal.jsonl');
      if (!existsSync(file)) return [];
      return readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as JournalEntry];
          } catch {
            return [];
          }
        });
    },
  };
  t.after(() => manager.kill('SIGKILL'));
  return manager;
}

/** Action entries (before/after) by term, per manager: no term may show two managers. */
export function termsByManager(managers: ManagerProcess[]): Map<number, Set<string>> {
  const terms = new Map<number, Set<string>>();
  for (const manager of managers) {
    for (const entry of manager.journal()) {
      if (
        entry.term === undefined ||
        (entry.phase !== 'before' && entry.phase !== 'after' && entry.phase !== 'decision')
      )
        continue;
      const names = terms.get(entry.term) ?? new Set<string>();
      names.add(manager.name);
      terms.set(entry.term, names);
    }
  }
  return terms;
}
