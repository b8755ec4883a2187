import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { runChecksum, type ChecksumReport } from '../../checksum/run.js';
import { WriterDiscoveryError } from '../../checksum/hosts.js';
import { CliExit, EXIT_FAILED, EXIT_OK } from '../exit.js';

/** Plain-text report: one line per replica and table that differs, then anything not compared. */
export function formatChecksumReport(report: ChecksumReport): string {
  const lines = [`writer ${report.writer}; ${report.tables.length} table(s); ${report.differences} differing chunk(s)`];
  for (const host of report.hosts) {
    if (host.status !== 'checked') {
      lines.push(`  ${host.host}: NOT COMPARED (${host.status}: ${host.reason ?? 'unknown'})`);
      continue;
    }
    const differing = Object.entries(host.diffs).filter(([, chunks]) => chunks > 0);
    if (differing.length === 0) lines.push(`  ${host.host}: clean`);
    for (const [table, chunks] of differing) lines.push(`  ${host.host} ${table}: ${chunks} differing chunk(s)`);
  }
  for (const table of report.tables.filter((entry) => entry.status !== 'checked')) lines.push(`  ${table.table}: ${table.reason}`);
  return `${lines.join('\n')}\n`;
}

export function registerChecksum(program: Command): void {
  program
    .command('checksum')
    .description('run a consistency check now: chunked checksums on the writer, replayed and compared on every replica')
    .requiredOption('-c, --config <file>', 'config file')
    .option('--tables <list>', 'comma-separated db.table (or db.*) to check instead of checksum.tables / all tables')
    .option('--json', 'print the full report as JSON')
    .action(async (options: { config: string; tables?: string; json?: boolean }) => {
      const config = loadConfig(options.config);
      const tables = options.tables
        ?.split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== '');
      let report: ChecksumReport;
      try {
        report = await runChecksum(config, { tables });
      } catch (error) {
        if (error instanceof WriterDiscoveryError) throw new CliExit(EXIT_FAILED, error.message);
        throw error;
      }
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatChecksumReport(report));
      // 1 when anything differs; also when a replica could not be compared, since "clean" would be a claim we cannot make.
      const failed = report.differences > 0 || report.hosts.some((host) => host.status !== 'checked') || report.tables.some((table) => table.status === 'failed');
      process.exitCode = failed ? EXIT_FAILED : EXIT_OK;
    });
}
