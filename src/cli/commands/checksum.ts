import type { Command } from 'commander';
import { loadClusterConfig } from '../../config/conf-dir.js';
import { runChecksum, type ChecksumReport } from '../../checksum/run.js';
import { WriterDiscoveryError } from '../../checksum/hosts.js';
import { CliExit, EXIT_FAILED, EXIT_OK } from '../exit.js';
import { createProgress } from '../progress.js';

/** Plain-text report: one line per replica and table that differs, then anything not compared. */
export function formatChecksumReport(report: ChecksumReport): string {
  const lines = [
    `writer ${report.writer}; ${report.tables.length} table(s); ${report.differences} differing chunk(s)`,
  ];
  for (const host of report.hosts) {
    if (host.status !== 'checked') {
      lines.push(`  ${host.host}: NOT COMPARED (${host.status}: ${host.reason ?? 'unknown'})`);
      continue;
    }
    const differing = Object.entries(host.diffs).filter(([, chunks]) => chunks > 0);
    if (differing.length === 0) lines.push(`  ${host.host}: clean`);
    for (const [table, chunks] of differing)
      lines.push(`  ${host.host} ${table}: ${chunks} differing chunk(s)`);
  }
  for (const table of report.tables.filter((entry) => entry.status !== 'checked'))
    lines.push(`  ${table.table}: ${table.reason}`);
  const rechecked = report.tables.filter((entry) => (entry.rechecked ?? 0) > 0);
  if (rechecked.length > 0)
    lines.push(
      `  re-checked under shared locks (written during the first pass, or different): ${rechecked.map((entry) => `${entry.table} ${entry.rechecked} chunk(s)`).join(', ')}`,
    );
  return `${lines.join('\n')}\n`;
}

export function registerChecksum(program: Command): void {
  program
    .command('checksum')
    .description(
      'run a consistency check now: chunked checksums read on every host at once, differing chunks re-checked the replicated way',
    )
    .requiredOption('-c, --config <file>', 'config file (or a clusters: file, a conf.d directory)')
    .option('--cluster <name>', 'the cluster to check, when the config has several')
    .option(
      '--tables <list>',
      'comma-separated db.table (or db.*) to check instead of checksum.tables / all tables',
    )
    .option('--json', 'print the full report as JSON (and progress as JSON lines on stderr)')
    .option('--no-progress', 'no progress bar or progress lines')
    .action(
      async (options: {
        config: string;
        cluster?: string;
        tables?: string;
        json?: boolean;
        progress: boolean;
      }) => {
        const config = loadClusterConfig(options.config, options.cluster);
        const tables = options.tables
          ?.split(',')
          .map((entry) => entry.trim())
          .filter((entry) => entry !== '');
        const progress = createProgress({
          kind: 'checksum',
          unit: 'rows',
          json: options.json === true,
          enabled: options.progress,
          format:
            'checksum |{bar}| {tables_done}/{tables_total} tables | {value}/{total} rows (estimated) | ETA {eta_formatted} | {table}',
        });
        // Rows of finished tables plus the current table's; the total is InnoDB's estimate, raised
        // when the real count passes it.
        let estimated = 0;
        let tablesTotal = 0;
        let tablesDone = 0;
        let rowsDone = 0;
        const show = (table: string, rows: number) =>
          progress.update(rows, Math.max(estimated, rows), {
            tables_done: tablesDone,
            tables_total: tablesTotal,
            table,
          });
        let report: ChecksumReport;
        try {
          report = await runChecksum(config, {
            tables,
            onPlan: (planned) => {
              tablesTotal = planned.length;
              estimated = planned.reduce((sum, entry) => sum + entry.estimatedRows, 0);
              show('', 0);
            },
            onProgress: (event) => show(event.table, rowsDone + event.rows),
            onTableDone: (outcome) => {
              tablesDone += 1;
              rowsDone += outcome.rows;
              show(outcome.table, rowsDone);
            },
          });
        } catch (error) {
          if (error instanceof WriterDiscoveryError) throw new CliExit(EXIT_FAILED, error.message);
          throw error;
        } finally {
          progress.stop();
        }
        process.stdout.write(
          options.json ? `${JSON.stringify(report, null, 2)}\n` : formatChecksumReport(report),
        );
        // 1 when anything differs; also when a replica could not be compared, since "clean" would be a claim we cannot make.
        const failed =
          report.differences > 0 ||
          report.hosts.some((host) => host.status !== 'checked') ||
          report.tables.some((table) => table.status === 'failed');
        process.exitCode = failed ? EXIT_FAILED : EXIT_OK;
      },
    );
}
