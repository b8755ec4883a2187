/**
 * An alerts token must not be able to flood the journal (issue 23): alerts not acted on are
 * journaled as one summary per webhook, and no entry is larger than a few kilobytes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { IncomingAlert } from '../../src/engine/types.js';
import { FileJournal } from '../../src/journal/journal.js';
import { harness } from './engine-fakes.js';

const healthy = { db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' } as const;

function alert(name: string, labels: Record<string, string>, index: number): IncomingAlert {
  return {
    status: 'firing',
    name,
    labels: { alertname: name, ...labels },
    annotations: {},
    startsAt: '2026-01-01T00:00:00Z',
    fingerprint: `${name}-${index}`,
  };
}

test('a 1000-alert webhook of alerts nobody acts on is one journal entry, counted by reason', async () => {
  const h = harness();
  await h.cycle(healthy);
  const before = h.journal.entries.length;
  const alerts = Array.from({ length: 1000 }, (_, index) =>
    index % 2 === 0
      ? alert(`Unruled${index}`, { host: 'db3' }, index)
      : alert('SwitchyardReplicationLagHigh', { host: `ghost${index}` }, index),
  );
  const decisions = await h.engine.handleAlerts(alerts);
  assert.equal(decisions.length, 1000, 'every alert still has its decision in the answer');
  assert.ok(decisions.every((decision) => decision.decision === 'ignored'));
  const written = h.journal.entries.slice(before);
  assert.equal(written.length, 1, JSON.stringify(written.map((entry) => entry.event)));
  const [summary] = written;
  assert.equal(summary?.event, 'alert.ignored');
  assert.match(summary?.reason ?? '', /^1000 alerts ignored; /);
  const inputs = summary?.inputs as { alerts: number; groups: unknown[]; other?: number };
  assert.equal(inputs.alerts, 1000);
  assert.ok(inputs.groups.length <= 20);
  assert.ok(JSON.stringify(summary).length < 10_000, `${JSON.stringify(summary).length} bytes`);
});

test('a 200 kB label becomes a journal line of a few kB, acted on or not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'journal-flood-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const journal = new FileJournal(join(dir, 'journal.jsonl'));
  const huge = 'x'.repeat(200_000);
  journal.append({
    phase: 'note',
    event: 'alert.ignored',
    host: huge,
    reason: `alert names unknown host "${huge}"`,
    detail: huge,
    inputs: { labels: { host: huge, other: huge } },
  });
  const line = readFileSync(join(dir, 'journal.jsonl'), 'utf8');
  assert.ok(line.length < 10_000, `${line.length} bytes`);
  const [entry] = journal.read();
  assert.match(entry?.reason ?? '', /more characters\)$/);

  const h = harness();
  await h.cycle(healthy);
  const before = h.journal.entries.length;
  await h.engine.handleAlerts([alert('SwitchyardReplicationLagHigh', { host: huge }, 1)]);
  for (const written of h.journal.entries.slice(before))
    assert.ok(JSON.stringify(written).length < 10_000, written.event);
});
