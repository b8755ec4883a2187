import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileJournal } from '../../src/journal/journal.js';

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
  for (let index = 0; index < 300; index++) journal.append({ phase: 'note', event: 'alert.ignored', reason: padding });
  // One entry longer than the first 64 KiB window: the tail read must widen its window.
  journal.append({ phase: 'note', event: 'alert.ignored', reason: 'y'.repeat(100_000) });
  assert.equal(new FileJournal(file).append({ phase: 'note', event: 'daemon.started' }).seq, 302);
});
