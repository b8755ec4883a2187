import assert from 'node:assert/strict';
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { validateConfig } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problems.js';
import { parseSize } from '../../src/config/size.js';
import { FileJournal, type JournalEntry } from '../../src/journal/journal.js';
import { linesBackward } from '../../src/journal/tail.js';

function tempJournalFile(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sy-journal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'state', 'journal.jsonl');
}

test('journal: entries are read back in order and seq continues after a reopen', (t) => {
  const file = tempJournalFile(t);
  const first = new FileJournal(file);
  first.append({ phase: 'decision', event: 'failover.decided', host: 'db2' });
  first.append({ phase: 'before', event: 'vip.add', host: 'db2' });
  const reopened = new FileJournal(file);
  const third = reopened.append({ phase: 'after', event: 'vip.add', host: 'db2', outcome: 'ok' });
  assert.equal(third.seq, 3);
  assert.deepEqual(
    reopened.read().map((entry) => [entry.seq, entry.event, entry.phase]),
    [
      [1, 'failover.decided', 'decision'],
      [2, 'vip.add', 'before'],
      [3, 'vip.add', 'after'],
    ],
  );
  assert.deepEqual(
    reopened.read({ limit: 1 }).map((entry) => entry.seq),
    [3],
  );
});

test('journal: a torn last line (crash mid-write) is skipped and seq follows the last intact entry', (t) => {
  const file = tempJournalFile(t);
  const journal = new FileJournal(file);
  journal.append({ phase: 'note', event: 'daemon.started' });
  appendFileSync(file, '{"at":1,"seq":2,"phase":"bef');
  const reopened = new FileJournal(file);
  assert.deepEqual(
    reopened.read().map((entry) => entry.seq),
    [1],
  );
  assert.equal(reopened.append({ phase: 'note', event: 'daemon.started' }).seq, 2);
});

test('journal: a journal far larger than the tail window still yields the last seq', (t) => {
  const file = tempJournalFile(t);
  const journal = new FileJournal(file);
  const padding = 'x'.repeat(2000);
  for (let index = 0; index < 300; index++)
    journal.append({ phase: 'note', event: 'alert.ignored', reason: padding });
  // One entry longer than the first 64 KiB window: the tail read must widen its window.
  journal.append({ phase: 'note', event: 'alert.ignored', reason: 'y'.repeat(100_000) });
  assert.equal(new FileJournal(file).append({ phase: 'note', event: 'daemon.started' }).seq, 302);
});

test('journal: rotated by size, keeping `keep` files; seq continues and reads span the files', (t) => {
  const file = tempJournalFile(t);
  const journal = new FileJournal(file, { maxBytes: 1000, keep: 2 });
  for (let index = 0; index < 40; index++)
    journal.append({ phase: 'note', event: 'alert.ignored', reason: `entry ${index + 1}` });
  const files = readdirSync(dirname(file)).sort();
  assert.deepEqual(
    files,
    ['journal.jsonl', 'journal.jsonl.1', 'journal.jsonl.2'],
    'the current file and two rotated ones, the oldest dropped',
  );
  for (const name of files)
    assert.ok(statSync(join(dirname(file), name)).size <= 1000, `${name} within max size`);
  const seqs = (name: string) =>
    readFileSync(name, 'utf8')
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as JournalEntry).seq);
  const previous = seqs(`${file}.1`);
  assert.equal(
    seqs(file)[0],
    (previous.at(-1) ?? 0) + 1,
    'FILE.1 holds the entries just before FILE',
  );
  const all = journal.read().map((entry) => entry.seq);
  assert.equal(all.at(-1), 40);
  assert.deepEqual(
    all,
    Array.from({ length: all.length }, (_, index) => (all[0] ?? 0) + index),
    'consecutive, oldest first, across files',
  );
  assert.ok((all[0] ?? 0) > 1, 'the oldest entries were rotated away');
  assert.ok(seqs(file).length < 15);
  assert.deepEqual(
    journal.read({ limit: 15 }).map((entry) => entry.seq),
    Array.from({ length: 15 }, (_, index) => 26 + index),
    'a limit larger than the current file reaches into FILE.1',
  );
  // A restart right after a rotation, before the current file was written: seq continues from FILE.1.
  rmSync(file);
  assert.equal(
    new FileJournal(file, { maxBytes: 1000, keep: 2 }).append({
      phase: 'note',
      event: 'daemon.started',
    }).seq,
    (previous.at(-1) ?? 0) + 1,
  );
});

test('journal: since stops at the first older entry instead of reading the whole journal', (t) => {
  const file = tempJournalFile(t);
  mkdirSync(dirname(file), { recursive: true });
  const lines = Array.from({ length: 5000 }, (_, index) =>
    JSON.stringify({ at: 1_000_000 + index, seq: index + 1, phase: 'note', event: 'x' }),
  );
  // A marker at the very start that claims a late time: a read that scanned the whole journal
  // and filtered would return it; a read that stops at the first older entry never sees it.
  lines[0] = JSON.stringify({ at: 9_000_000, seq: 1, phase: 'note', event: 'marker' });
  writeFileSync(file, `${lines.join('\n')}\n`);
  const journal = new FileJournal(file);
  assert.deepEqual(
    journal.read({ since: 1_000_000 + 4997 }).map((entry) => entry.seq),
    [4998, 4999, 5000],
  );
  assert.deepEqual(
    journal.read({ since: 1_000_000 + 4990, limit: 2 }).map((entry) => entry.seq),
    [4999, 5000],
  );
  assert.deepEqual(journal.read({ since: 2_000_000 }), []);
});

test('journal: a torn last line is ended at open, so the next entry is not glued to it and lost', (t) => {
  const file = tempJournalFile(t);
  new FileJournal(file).append({ phase: 'note', event: 'daemon.started' });
  appendFileSync(file, '{"at":1,"seq":2,"phase":"bef');
  const reopened = new FileJournal(file);
  reopened.append({ phase: 'note', event: 'daemon.started', reason: 'after the crash' });
  assert.deepEqual(
    new FileJournal(file).read().map((entry) => [entry.seq, entry.reason]),
    [
      [1, undefined],
      [2, 'after the crash'],
    ],
  );
});

test('linesBackward: lines from last to first across chunk borders, multi-byte characters intact', (t) => {
  const file = tempJournalFile(t);
  mkdirSync(dirname(file), { recursive: true });
  const lines = Array.from({ length: 200 }, (_, index) => `${index}:${'é€'.repeat(index % 17)}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  for (const chunk of [1, 3, 7, 64, 100_000])
    assert.deepEqual([...linesBackward(file, chunk)], [...lines].reverse(), `chunk ${chunk}`);
  writeFileSync(file, 'no newline at the end');
  assert.deepEqual([...linesBackward(file, 4)], ['no newline at the end']);
  assert.deepEqual([...linesBackward(join(dirname(file), 'missing'))], []);
});

test('journal config: size with units, defaults, and problems named by key path', () => {
  assert.equal(parseSize('64MiB'), 64 * 1024 * 1024);
  assert.equal(parseSize('100MB'), 100_000_000);
  assert.equal(parseSize('512 KiB'), 512 * 1024);
  assert.throws(() => parseSize('64'), /not a size/);
  assert.throws(() => parseSize('64mb'), /not a size/);
  const base = yaml.load(
    readFileSync(new URL('../fixtures/valid.yml', import.meta.url), 'utf8'),
  ) as Record<string, unknown>;
  assert.deepEqual(validateConfig({ ...base }).config?.journal, {
    max_size: 64 * 1024 * 1024,
    keep: 5,
  });
  assert.deepEqual(
    validateConfig({ ...base, journal: { max_size: '1GiB', keep: 10 } }).config?.journal,
    { max_size: 1024 ** 3, keep: 10 },
  );
  const problems = validateConfig({
    ...base,
    journal: { max_size: '10', keep: 0, rotate: true },
  }).problems.map(formatProblem);
  assert.ok(
    problems.some((line) => /^journal\.max_size: .*not a size/.test(line)),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((line) => /^journal\.keep: /.test(line)),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((line) => /journal.*rotate/.test(line)),
    problems.join('\n'),
  );
  const tiny = validateConfig({ ...base, journal: { max_size: '1KiB' } }).problems.map(
    formatProblem,
  );
  assert.ok(
    tiny.some((line) => /^journal\.max_size: must be at least 64KiB/.test(line)),
    tiny.join('\n'),
  );
});
