import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { MARIADB } from './binaries.js';
import type { NetnsCluster } from './netns-cluster.js';
import { waitFor } from './sandbox.js';

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

/**
 * What an operator does after set-online of a host back from a fault was answered: nothing when
 * it was accepted; when it was refused because the host has transactions the writer lacks (a
 * killed writer's last commit, binlogged but never sent: refused, as it must be), `rejoin
 * --discard-errant` (the events saved under backup.dir, the host reseeded), then the host awaited
 * ONLINE. Any other refusal fails the test. Returns whether the host had to be rejoined.
 */
export async function rejoinIfErrant(
  host: string,
  online: { ok: boolean; detail: string },
  context: {
    /** The CLI's config arguments (`-c FILE`). */
    config: string[];
    isOnline: () => boolean;
    diagnostic: (message: string) => void;
  },
): Promise<boolean> {
  if (online.ok) return false;
  assert.match(
    online.detail,
    /transactions the writer .* lacks/,
    `set-online ${host}: ${online.detail}`,
  );
  const rejoin = await cli(['rejoin', host, '--discard-errant', '--json', ...context.config]);
  assert.equal(rejoin.code, 0, `rejoin ${host}: ${rejoin.stderr}\n${rejoin.stdout}`);
  context.diagnostic(
    `${host} was errant (${online.detail.slice(0, 120)}); rejoined: ${rejoin.stdout.split('\n')[0]?.slice(0, 300)}`,
  );
  await waitFor(`${host} ONLINE after rejoin`, async () => context.isOnline(), 60_000);
  return true;
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
