/**
 * bench/journal: the audit journal at 1,000,000 entries against a small one. Writes a
 * 1 M-entry journal.jsonl (one file: the worst case, as an un-rotated journal from before
 * rotation, or `journal.max_size` set very high), then times:
 *   - opening it (FileJournal: the last seq from the tail) and reading the newest 50, in process;
 *   - the manager's start-up (`switchyard run` from the compiled build until /healthz answers, and
 *     until /readyz says a monitor cycle finished) with the small and the large journal;
 *   - GET /api/v1/journal?limit=50, and `since` = 10 minutes, against that running manager;
 *   - `switchyard journal --limit 50` as a whole process (most of it is node starting up; the
 *     `switchyard --version` line is that floor).
 * Needs MariaDB (a one-host sandbox, so the manager runs as it would). Run `npm run build` first.
 *
 *   npx tsx bench/journal.ts [--entries 1000000]
 */
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';
import { readConfigFile } from '../src/config/load.js';
import { FileJournal, type JournalEntry } from '../src/journal/journal.js';
import { startSandbox } from '../test/support/sandbox.js';
import { median, option, until } from './support.js';

const run = promisify(execFile);
const CLI = new URL('../bin/switchyard.js', import.meta.url).pathname;
const entries = Number(option('--entries', '1000000'));

const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;

function timed<T>(work: () => T): [T, number] {
  const start = performance.now();
  const result = work();
  return [result, performance.now() - start];
}

async function timedAsync<T>(work: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await work();
  return [result, performance.now() - start];
}

/** Entries shaped like a real cluster's: decisions with reasons, before/after pairs, one a second. */
async function writeJournal(file: string, count: number): Promise<void> {
  const stream = createWriteStream(file);
  const now = Date.now();
  const events = ['vip.add', 'vip.remove', 'mysql.set_read_only', 'role.move', 'alert.ignored'];
  for (let index = 0; index < count; index++) {
    const phase = (['decision', 'before', 'after'] as const)[index % 3] as JournalEntry['phase'];
    const entry: JournalEntry = {
      at: now - (count - index) * 1000,
      seq: index + 1,
      phase,
      event: events[index % events.length] as string,
      action: `a${Math.floor(index / 3)}`,
      host: `db${(index % 3) + 1}`,
      role: 'reader',
      reason: `reader IP 10.0.0.${100 + (index % 3)}: rebalancing: db${(index % 3) + 1} held 2, db${((index + 1) % 3) + 1} held 0`,
      ...(phase === 'after' ? { outcome: 'ok' as const } : {}),
    };
    if (!stream.write(`${JSON.stringify(entry)}\n`))
      await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) =>
    stream.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
}

const sandbox = await startSandbox(undefined, { masters: 1, replicas: 0 });
try {
  const raw = yaml.load(readFileSync(sandbox.manifest.configFile, 'utf8')) as Record<string, any>;
  raw.listen = `127.0.0.1:${sandbox.listenPort}`;
  raw.journal = { max_size: '4GiB', keep: 1 };
  const configFor = (name: string) => {
    const state = join(sandbox.dir, `state-${name}`);
    mkdirSync(state, { recursive: true });
    const file = join(sandbox.dir, `bench-${name}.yml`);
    writeFileSync(file, yaml.dump({ ...raw, state_dir: state }));
    const { problems } = readConfigFile(file);
    if (problems.length > 0) throw new Error(JSON.stringify(problems));
    return { file, journal: join(state, 'journal.jsonl') };
  };
  const small = configFor('small');
  const large = configFor('large');
  await writeJournal(small.journal, 100);
  const [, writeMs] = await timedAsync(() => writeJournal(large.journal, entries));
  console.log(
    `journal written: ${entries} entries, ${(statSync(large.journal).size / 1024 ** 2).toFixed(0)} MiB in ${(writeMs / 1000).toFixed(1)} s (bulk write, no fsync)`,
  );

  const rows: string[][] = [];
  for (const [name, setup] of [
    ['100 entries', small],
    [`${entries} entries`, large],
  ] as const) {
    const opens = Array.from(
      { length: 20 },
      () => timed(() => new FileJournal(setup.journal, { maxBytes: 4 * 1024 ** 3, keep: 1 }))[1],
    );
    const journal = new FileJournal(setup.journal, { maxBytes: 4 * 1024 ** 3, keep: 1 });
    const reads = Array.from({ length: 50 }, () => timed(() => journal.read({ limit: 50 }))[1]);

    const startups: number[] = [];
    const readies: number[] = [];
    let httpLimit: number[] = [];
    let httpSince: number[] = [];
    let sinceCount = 0;
    let cliRuns: number[] = [];
    for (let round = 0; round < 3; round++) {
      const start = performance.now();
      const daemon = spawn(process.execPath, [CLI, 'run', '-c', setup.file], { stdio: 'ignore' });
      try {
        const base = `http://127.0.0.1:${sandbox.listenPort}`;
        await until(
          '/healthz',
          async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.ok,
          30_000,
          2,
        );
        startups.push(performance.now() - start);
        await until(
          '/readyz',
          async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.ok,
          30_000,
          2,
        );
        readies.push(performance.now() - start);
        if (round > 0) continue;
        const token = readFileSync(join(sandbox.dir, 'token'), 'utf8').trim();
        const get = async (query: string) => {
          const [response, elapsed] = await timedAsync(() =>
            fetch(`${base}/api/v1/journal?${query}`, {
              headers: { authorization: `Bearer ${token}` },
            }),
          );
          const body = (await response.json()) as { entries: JournalEntry[] };
          return { elapsed, count: body.entries.length };
        };
        httpLimit = [];
        for (let index = 0; index < 50; index++) httpLimit.push((await get('limit=50')).elapsed);
        httpSince = [];
        for (let index = 0; index < 20; index++) {
          const result = await get(`since=${Date.now() - 600_000}&limit=10000`);
          httpSince.push(result.elapsed);
          sinceCount = result.count;
        }
        cliRuns = [];
        for (let index = 0; index < 10; index++)
          cliRuns.push(
            (
              await timedAsync(() =>
                run(process.execPath, [CLI, 'journal', '--limit', '50', '-c', setup.file]),
              )
            )[1],
          );
      } finally {
        daemon.kill('SIGTERM');
        await new Promise((resolve) => daemon.once('exit', resolve));
      }
    }
    rows.push([
      name,
      `open ${ms(median(opens))}, read 50 ${ms(median(reads))}`,
      `healthz ${ms(median(startups))}, first cycle ${ms(median(readies))}`,
      `limit=50 ${ms(median(httpLimit))}, since 10m (${sinceCount}) ${ms(median(httpSince))}`,
      ms(median(cliRuns)),
    ]);
  }
  const versions: number[] = [];
  for (let index = 0; index < 10; index++)
    versions.push((await timedAsync(() => run(process.execPath, [CLI, '--version'])))[1]);
  const [, fullParseMs] = timed(() =>
    readFileSync(large.journal, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as JournalEntry)
      .slice(-50),
  );
  console.log(
    '\njournal | FileJournal in process (median) | manager start-up (median of 3) | GET /api/v1/journal (median) | `switchyard journal --limit 50` process',
  );
  for (const row of rows) console.log(row.join(' | '));
  console.log(
    `\nfloor: \`switchyard --version\` as a process: ${ms(median(versions))} (node start and module loading)`,
  );
  console.log(
    `before this change, reading the newest 50 parsed the whole file: ${ms(fullParseMs)} for ${entries} entries`,
  );
} finally {
  await sandbox.down();
}
