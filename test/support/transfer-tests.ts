import { execFile } from 'node:child_process';
import { MARIADB } from './binaries.js';
import type { NetnsCluster } from './netns-cluster.js';

/** The built CLI (bin/switchyard.js prefers dist/). */
export const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;

/** What every agent transfer test needs (namespace hosts, mariabackup streams, a server). */
export const TRANSFER_BINARIES: Array<[string, string]> = [
  ['ip', 'iproute2'],
  ['mariadb-backup', 'mariadb-backup'],
  ['mbstream', 'mariadb-backup'],
  ...MARIADB,
];

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The switchyard CLI as an operator runs it (from the build); never throws, reports the exit code. */
export function cli(args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 180_000 }, (error, stdout, stderr) => {
      resolve({
        code: error ? Number((error as { code?: number }).code ?? 1) : 0,
        stdout: String(stdout),
        stderr: String(stderr),
      });
    });
  });
}

/** Inserts into app.writes on db1 every 10 ms until stopped; returns how many rows it wrote. */
export function writeLoad(cluster: NetnsCluster): { stop: () => Promise<number> } {
  let running = true;
  let rows = 0;
  const loop = (async () => {
    while (running) {
      rows += 1;
      await cluster.instance('db1').sql('INSERT INTO app.writes VALUES (?, ?)', [rows, Date.now()]);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return rows;
    },
  };
}
