/**
 * Clone through the agents vs. a plain hot backup, in the same run, on network-namespace hosts:
 *   A) switchyard's clone: db2's agent streams mariabackup | gzip to db3's agent, which unpacks,
 *      prepares, swaps the datadir, starts the server and points it at the writer;
 *   B) on db2: mariadb-backup --backup --stream=mbstream | gzip > a local file (no prepare, no restart).
 * Interleaved, the order alternating each run (A B, B A, A B ...) so neither side always runs on
 * the colder cache. Prints both times per run, then each side's median and range and the per-run
 * ratio A/B (target <= 1.25). Run as root: npx tsx bench/clone.ts [--gb 1] [--runs 5]
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { directorySize } from '../src/snapshot/command.js';
import { Reseeder } from '../src/transfer/reseed.js';
import { humanBytes } from '../src/transfer/stream-tools.js';
import { startNetnsCluster } from '../test/support/netns-cluster.js';
import { median, option } from './support.js';

const gigabytes = Number(option('--gb', '1'));
const runs = Number(option('--runs', '5'));
const range = (values: number[]) =>
  `${Math.min(...values).toFixed(1)}-${Math.max(...values).toFixed(1)}`;

async function main(): Promise<void> {
  const cluster = await startNetnsCluster(undefined, { masters: 2, replicas: 1, transfers: true });
  try {
    const db2 = cluster.instance('db2');
    const datadir = join(cluster.instanceDir('db2'), 'data');
    // Bulk data only on the source (not replicated): rows of hex text (compresses about 2:1, like real data).
    await db2.sql(
      'SET STATEMENT sql_log_bin = 0 FOR CREATE TABLE app.bulk (id INT PRIMARY KEY, a CHAR(64), b CHAR(64), c CHAR(64), d CHAR(64)) ENGINE=InnoDB',
    );
    const rowsPerBatch = 200_000;
    let next = 0;
    const loader = await db2.rootConnection();
    try {
      await loader.query('SET SESSION sql_log_bin = 0');
      await loader.query('SET SESSION max_recursive_iterations = 1000000');
      while ((await directorySize(datadir)) < gigabytes * 1024 ** 3) {
        await loader.query(
          `INSERT INTO app.bulk WITH RECURSIVE s(n) AS (SELECT ${next + 1} UNION ALL SELECT n + 1 FROM s WHERE n < ${next + rowsPerBatch})
           SELECT n, SHA2(n, 256), SHA2(n + 1, 256), SHA2(n + 2, 256), SHA2(n + 3, 256) FROM s`,
        );
        next += rowsPerBatch;
      }
    } finally {
      loader.destroy();
    }
    const size = await directorySize(datadir);
    process.stdout.write(`source datadir: ${humanBytes(size)} (${next} bulk rows)\n`);

    // B) the plain hot backup to a local file, in db2's namespace.
    const backup = async (): Promise<{ seconds: number; compressed: number }> => {
      const scratch = mkdtempSync(join(cluster.instanceDir('db2'), '..', 'bench-'));
      const file = join(scratch, 'backup.mbstream.gz');
      const started = Date.now();
      try {
        await new Promise<void>((resolve, reject) => {
          const out = openSync(file, 'w');
          const wrap = cluster.nsHost('db2').wrap;
          const child = spawn(
            wrap[0] as string,
            [
              ...wrap.slice(1),
              'mariadb-backup',
              `--socket=${db2.socket}`,
              '--user=root',
              '--backup',
              '--stream=mbstream',
              `--datadir=${datadir}`,
              `--target-dir=${join(scratch, 'tmp')}`,
            ],
            { stdio: ['ignore', 'pipe', 'ignore'] },
          );
          const gzip = spawn('gzip', ['-c'], { stdio: ['pipe', out, 'ignore'] });
          closeSync(out);
          child.stdout.pipe(gzip.stdin!);
          let pending = 2;
          const done = (what: string) => (code: number | null) => {
            if (code !== 0) reject(new Error(`${what} exited ${code}`));
            else if (--pending === 0) resolve();
          };
          child.once('close', done('mariadb-backup'));
          gzip.once('close', done('gzip'));
        });
        return { seconds: (Date.now() - started) / 1000, compressed: statSync(file).size };
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    };

    // A) the clone through the agents (the manager's part only starts and follows it).
    const clone = async () => {
      const phases: string[] = [];
      let lastPhase = '';
      const started = Date.now();
      const reseeder = new Reseeder(cluster.config, {
        pollMs: 200,
        onProgress: (progress) => {
          if (progress.phase === lastPhase) return;
          lastPhase = progress.phase;
          phases.push(`${progress.phase} at ${((Date.now() - started) / 1000).toFixed(1)} s`);
        },
      });
      const running = await reseeder.start({
        operation: 'clone',
        from: 'db2',
        to: 'db3',
        writer: 'db1',
        states: { db3: 'ADMIN_OFFLINE' },
      });
      const result = await running.done;
      return { seconds: (Date.now() - started) / 1000, result, phases };
    };

    const a: number[] = [];
    const b: number[] = [];
    const ratios: number[] = [];
    for (let run = 1; run <= runs; run++) {
      const cloneFirst = run % 2 === 1;
      const first = cloneFirst ? await clone() : await backup();
      const second = cloneFirst ? await backup() : await clone();
      const cloned = (cloneFirst ? first : second) as Awaited<ReturnType<typeof clone>>;
      const backedUp = (cloneFirst ? second : first) as Awaited<ReturnType<typeof backup>>;
      a.push(cloned.seconds);
      b.push(backedUp.seconds);
      ratios.push(cloned.seconds / backedUp.seconds);
      process.stdout.write(
        `run ${run} (${cloneFirst ? 'A then B' : 'B then A'})\n` +
          `  A clone db2 -> db3 through the agents: ${cloned.seconds.toFixed(1)} s (${humanBytes(cloned.result.rawBytes)} streamed, ${humanBytes(cloned.result.wireBytes)} on the wire, gzip -1; prepare, swap, start, replicate included)\n` +
          `  B mariadb-backup --stream=mbstream | gzip > file on db2: ${backedUp.seconds.toFixed(1)} s (${humanBytes(backedUp.compressed)}, gzip -6)\n` +
          `  A phases: ${cloned.phases.join(', ')}\n` +
          `  ratio A/B: ${(cloned.seconds / backedUp.seconds).toFixed(2)}\n`,
      );
    }
    process.stdout.write(
      `summary (${runs} runs each, interleaved): clone median ${median(a).toFixed(1)} s (${range(a)}); backup median ${median(b).toFixed(1)} s (${range(b)}); ratio A/B per run median ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}) (target <= 1.25)\n`,
    );
  } finally {
    await cluster.destroy();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
