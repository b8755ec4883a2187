/**
 * Switchyard's replicated checksum vs pt-table-checksum on the same 1M-row table, same sandbox,
 * same run: wall time, the writer's handler reads (Handler_read_* delta, a load measure) and detection of one row
 * changed on a replica behind replication's back.
 *
 *   npx tsx bench/checksum.ts [rows]
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { runChecksum } from '../src/checksum/run.js';
import { startSandbox, waitFor } from '../test/support/sandbox.js';

const run = promisify(execFile);
const ROWS = Number(process.argv[2] ?? 1_000_000);

async function main(): Promise<void> {
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
    const ours = async () => {
      const before = await rowsRead();
      const started = performance.now();
      const report = await runChecksum(sandbox.config, { tables: ['bench.items'] });
      const seconds = (performance.now() - started) / 1000;
      const table = report.tables[0];
      return {
        seconds,
        rowsRead: (await rowsRead()) - before,
        chunks: table?.chunks,
        db3Diffs: report.hosts.find((host) => host.host === 'db3')?.diffs['bench.items'],
      };
    };
    const pt = async () => {
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
        exit: code,
        diffs: Number(fields[2]),
        chunks: Number(fields[5]),
      };
    };

    const cleanOurs = await ours();
    const cleanPt = await pt();
    console.log(
      `clean    switchyard: ${cleanOurs.seconds.toFixed(2)} s, ${cleanOurs.chunks} chunks, writer handler reads ${cleanOurs.rowsRead}, db3 diffs ${cleanOurs.db3Diffs}`,
    );
    console.log(
      `clean    pt-table-checksum: ${cleanPt.seconds.toFixed(2)} s, ${cleanPt.chunks} chunks, writer handler reads ${cleanPt.rowsRead}, diffs ${cleanPt.diffs}, exit ${cleanPt.exit}`,
    );

    const db3 = await sandbox.instance('db3').rootConnection();
    await db3.query('SET SESSION sql_log_bin = 0');
    await db3.query(`UPDATE bench.items SET qty = qty + 1 WHERE id = ${Math.floor(ROWS / 2)}`);
    db3.destroy();
    const driftOurs = await ours();
    const driftPt = await pt();
    console.log(
      `drifted  switchyard: ${driftOurs.seconds.toFixed(2)} s, db3 diffs ${driftOurs.db3Diffs}`,
    );
    console.log(
      `drifted  pt-table-checksum: ${driftPt.seconds.toFixed(2)} s, diffs ${driftPt.diffs}, exit ${driftPt.exit}`,
    );
    const ratio = (cleanPt.seconds + driftPt.seconds) / (cleanOurs.seconds + driftOurs.seconds);
    console.log(`ratio pt/switchyard time: ${ratio.toFixed(2)} (target >= 1.0)`);
    console.log(
      `same detection: ${cleanOurs.db3Diffs === 0 && cleanPt.diffs === 0 && (driftOurs.db3Diffs ?? 0) > 0 && driftPt.diffs > 0 ? 'yes' : 'NO'}`,
    );
  } finally {
    await sandbox.down();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
