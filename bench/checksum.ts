/**
 * Switchyard's checksum (docs/consistency.md, "How it works") vs pt-table-checksum on the same 1M-row table, same sandbox
 * (2 masters, 1 replica on loopback), interleaved: A B A B ... (Switchyard, then pt, --runs
 * times) on the clean table, then one row changed on db3 behind replication's back and the same
 * again. One unmeasured warm-up run of each tool comes first (buffer pools warm on every host).
 * Per run: wall time, chunks, the writer's Handler_read_* delta (a load measure) and what each
 * tool detected; then per phase the median and range of each tool and of the per-pair ratio
 * Switchyard / pt (target <= 0.5). --profile adds, for Switchyard's last run of each phase, the
 * time spent in each kind of statement per host.
 *
 *   npx tsx bench/checksum.ts [--rows 1000000] [--runs 5] [--profile]
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { promisify } from 'node:util';
import { connectManager } from '../src/checksum/hosts.js';
import { runChecksum } from '../src/checksum/run.js';
import type { Connection } from '../src/mysql/connect.js';
import { startSandbox, waitFor } from '../test/support/sandbox.js';
import { flag, median, option } from './support.js';

const run = promisify(execFile);
const ROWS = Number(option('--rows', '1000000'));
const RUNS = Number(option('--runs', '5'));
const PROFILE = flag('--profile');

interface Outcome {
  seconds: number;
  rowsRead: number;
  chunks: number;
  /** Differing chunks found (Switchyard: db3's; pt: its DIFFS column, all replicas). */
  diffs: number;
  note: string;
}

const load = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

async function main(): Promise<void> {
  console.log(
    `checksum bench: ${ROWS} rows, ${RUNS} interleaved runs per tool and phase, load average at start ${load()} (2 cores, shared)`,
  );
  const sandbox = await startSandbox(undefined, {
    masters: 2,
    replicas: 1,
    extraSettings: { innodb_buffer_pool_size: '256M' },
  });
  try {
    const db1 = sandbox.instance('db1');
    const password = readFileSync(sandbox.config.mysql.password_file as string, 'utf8').trim();
    console.log(`loading ${ROWS} rows...`);
    const loader = await db1.rootConnection();
    await loader.query('SET SESSION max_recursive_iterations = 100000000');
    await loader.query('CREATE DATABASE bench');
    await loader.query(
      'CREATE TABLE bench.items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL, price DECIMAL(10,2), note VARCHAR(40) NULL, updated DATETIME NOT NULL)',
    );
    for (let start = 0; start < ROWS; start += 100_000) {
      const end = Math.min(ROWS, start + 100_000);
      await loader.query(
        `INSERT INTO bench.items WITH RECURSIVE s(n) AS (SELECT ${start + 1} UNION ALL SELECT n + 1 FROM s WHERE n < ${end})
         SELECT n, CONCAT('item-', n), n % 1000, n / 7, IF(n % 10 = 0, NULL, MD5(n)), '2026-01-01 00:00:00' + INTERVAL n SECOND FROM s`,
      );
    }
    loader.destroy();
    for (const name of ['db2', 'db3']) {
      await waitFor(
        `${name} has the rows`,
        async () =>
          Number(
            (await sandbox.instance(name).sql('SELECT COUNT(*) AS n FROM bench.items'))[0]?.n,
          ) === ROWS,
        600_000,
        1000,
      );
    }
    // The pt DSN table lists replicas by loopback port (report_host names do not resolve).
    await db1.sql('CREATE DATABASE percona');
    await db1.sql(
      'CREATE TABLE percona.dsns (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT, dsn VARCHAR(255) NOT NULL)',
    );
    for (const name of ['db2', 'db3'])
      await db1.sql('INSERT INTO percona.dsns (dsn) VALUES (?)', [
        `h=127.0.0.1,P=${sandbox.instance(name).port},u=switchyard,p=${password}`,
      ]);

    const rowsRead = async () =>
      Number(
        (
          await db1.sql(
            "SELECT SUM(VARIABLE_VALUE) AS v FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME LIKE 'HANDLER\\_READ\\_%'",
          )
        )[0]?.v,
      );

    const baseConnect = connectManager(sandbox.config);
    let profile = new Map<string, { count: number; ms: number }>();
    /** Wraps every connection to time each statement by host and its first words. */
    const profilingConnect = async (host: string): Promise<Connection> => {
      const connection = await baseConnect(host);
      const query = connection.query.bind(connection) as (...args: unknown[]) => Promise<unknown>;
      (connection as unknown as { query: typeof query }).query = async (...args: unknown[]) => {
        const first = args[0] as string | { sql: string };
        const sql = typeof first === 'string' ? first : first.sql;
        const kind = `${host} ${sql.replace(/\s+/g, ' ').slice(0, 48)}`;
        const started = performance.now();
        try {
          return await query(...args);
        } finally {
          const entry = profile.get(kind) ?? { count: 0, ms: 0 };
          entry.count += 1;
          entry.ms += performance.now() - started;
          profile.set(kind, entry);
        }
      };
      return connection;
    };

    const ours = async (): Promise<Outcome> => {
      profile = new Map();
      const before = await rowsRead();
      const started = performance.now();
      let lastChunkAt = 0;
      const report = await runChecksum(sandbox.config, {
        tables: ['bench.items'],
        connect: PROFILE ? profilingConnect : undefined,
        onProgress: () => (lastChunkAt = performance.now()),
      });
      const seconds = (performance.now() - started) / 1000;
      const db3 = report.hosts.find((host) => host.host === 'db3');
      const db2 = report.hosts.find((host) => host.host === 'db2');
      return {
        seconds,
        rowsRead: (await rowsRead()) - before,
        chunks: report.tables[0]?.chunks ?? 0,
        diffs: db3?.diffs['bench.items'] ?? -1,
        note: `db2 diffs ${db2?.diffs['bench.items']}, chunks re-checked ${report.tables[0]?.rechecked ?? 0}, replicas caught up ${((performance.now() - lastChunkAt) / 1000).toFixed(2)} s after the writer's last chunk`,
      };
    };
    const pt = async (): Promise<Outcome> => {
      const before = await rowsRead();
      const started = performance.now();
      let stdout: string;
      let code = 0;
      try {
        ({ stdout } = await run(
          'pt-table-checksum',
          [
            `h=127.0.0.1,P=${db1.port},u=switchyard,p=${password}`,
            '--databases=bench',
            '--tables=items',
            '--replicate=percona.checksums',
            '--recursion-method=dsn=D=percona,t=dsns',
            '--no-check-binlog-format',
            '--chunk-time=0.5',
            '--max-lag=5',
          ],
          { maxBuffer: 16 * 1024 * 1024 },
        ));
      } catch (error) {
        const failure = error as { stdout?: string; code?: number; stderr?: string };
        stdout = failure.stdout ?? '';
        code = failure.code ?? -1;
        if (!/bench\.items/.test(stdout))
          throw new Error(`pt-table-checksum failed (${code}): ${failure.stderr}`, {
            cause: error,
          });
      }
      const seconds = (performance.now() - started) / 1000;
      const line = stdout.split('\n').find((text) => text.trim().endsWith('bench.items')) ?? '';
      const fields = line.trim().split(/\s+/);
      return {
        seconds,
        rowsRead: (await rowsRead()) - before,
        chunks: Number(fields[5]),
        diffs: Number(fields[2]),
        note: `exit ${code}, its own TIME ${fields[7]} s`,
      };
    };

    console.log('warm-up (not counted): one run of each');
    await ours();
    await pt();

    const phases: Array<{ name: string; ours: Outcome[]; pt: Outcome[] }> = [];
    for (const name of ['clean', 'drifted']) {
      if (name === 'drifted') {
        const db3 = await sandbox.instance('db3').rootConnection();
        await db3.query('SET SESSION sql_log_bin = 0');
        await db3.query(`UPDATE bench.items SET qty = qty + 1 WHERE id = ${Math.floor(ROWS / 2)}`);
        db3.destroy();
      }
      const phase = { name, ours: [] as Outcome[], pt: [] as Outcome[] };
      phases.push(phase);
      for (let index = 1; index <= RUNS; index++) {
        const a = await ours();
        console.log(
          `${name.padEnd(8)} run ${index}  switchyard        ${a.seconds.toFixed(2)} s, ${a.chunks} chunks, writer handler reads ${a.rowsRead}, db3 diffs ${a.diffs}; ${a.note}`,
        );
        phase.ours.push(a);
        const b = await pt();
        console.log(
          `${name.padEnd(8)} run ${index}  pt-table-checksum ${b.seconds.toFixed(2)} s, ${b.chunks} chunks, writer handler reads ${b.rowsRead}, diffs ${b.diffs}; ${b.note}`,
        );
        phase.pt.push(b);
      }
      if (PROFILE) {
        console.log(`  profile of Switchyard's last ${name} run (ms, statements, host statement):`);
        for (const [kind, entry] of [...profile].sort((x, y) => y[1].ms - x[1].ms).slice(0, 10))
          console.log(
            `    ${entry.ms.toFixed(0).padStart(6)} ${String(entry.count).padStart(4)}  ${kind}`,
          );
      }
    }

    const range = (values: number[]) =>
      `${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}`;
    console.log(`summary (${RUNS} runs each, interleaved; load average at end ${load()}):`);
    for (const phase of phases) {
      const a = phase.ours.map((outcome) => outcome.seconds);
      const b = phase.pt.map((outcome) => outcome.seconds);
      const ratios = a.map((seconds, index) => seconds / (b[index] as number));
      console.log(
        `  ${phase.name.padEnd(8)} switchyard median ${median(a).toFixed(2)} s (${range(a)}); pt-table-checksum median ${median(b).toFixed(2)} s (${range(b)}); ratio switchyard/pt per pair median ${median(ratios).toFixed(2)} (${range(ratios)}), of medians ${(median(a) / median(b)).toFixed(2)} (target <= 0.5)`,
      );
    }
    const [clean, drifted] = phases as [(typeof phases)[0], (typeof phases)[0]];
    const detection =
      clean.ours.every((outcome) => outcome.diffs === 0) &&
      clean.pt.every((outcome) => outcome.diffs === 0) &&
      drifted.ours.every((outcome) => outcome.diffs === 1) &&
      drifted.pt.every((outcome) => outcome.diffs === 1);
    console.log(
      `  same detection in every run (clean: 0 differing chunks; drifted: 1 on db3, pt 1): ${detection ? 'yes' : 'NO'}`,
    );
  } finally {
    await sandbox.down();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
