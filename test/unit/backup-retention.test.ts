import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import * as yaml from 'js-yaml';
import { BACKUP_META, type BackupInfo } from '../../src/backup/backup.js';
import {
  CatalogueRefused,
  deleteFromCatalogue,
  parseBackupId,
  readCatalogue,
} from '../../src/backup/catalogue.js';
import { localCatalogue, pruneBackups } from '../../src/backup/prune.js';
import { planRetention, type RetentionCandidate } from '../../src/backup/retention.js';
import { renderBackupList } from '../../src/cli/backup-list.js';
import { validateConfig } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problems.js';
import { MemoryJournal } from '../../src/journal/journal.js';

const NOW = new Date('2026-03-01T00:00:00Z');
const DAY = 86_400_000;
const GTID = '0-1-100';

/** A backup taken `daysAgo` days before NOW; ids sort like the times they encode. */
function full(daysAgo: number, gtid = GTID): RetentionCandidate {
  const createdAt = new Date(NOW.getTime() - daysAgo * DAY).toISOString();
  return { id: `db2/${createdAt}-full`, host: 'db2', kind: 'full', createdAt, gtidPosition: gtid };
}
function incremental(daysAgo: number, base: RetentionCandidate): RetentionCandidate {
  const createdAt = new Date(NOW.getTime() - daysAgo * DAY).toISOString();
  return {
    id: `db2/${createdAt}-inc`,
    host: 'db2',
    kind: 'incremental',
    baseId: base.id,
    createdAt,
    gtidPosition: GTID,
  };
}

const f1 = full(10);
const i1a = incremental(9, f1);
const i1b = incremental(8, i1a);
const f2 = full(7);
const f3 = full(4);
const i3 = incremental(3, f3);
const f4 = full(1);

const cases: Array<{
  name: string;
  backups: RetentionCandidate[];
  keepFull: number;
  maxAgeDays?: number;
  inUse?: string[];
  removed: RetentionCandidate[];
}> = [
  { name: 'nothing beyond keep_full', backups: [f1, f2, f3, f4], keepFull: 7, removed: [] },
  { name: 'keep 2 of 4 fulls', backups: [f1, f2, f3, f4], keepFull: 2, removed: [f2, f1] },
  {
    name: 'keep 1: the newest only',
    backups: [f1, f2, f3, f4],
    keepFull: 1,
    removed: [f3, f2, f1],
  },
  {
    name: 'an incremental chain goes with its full, incrementals before the full',
    backups: [f1, i1a, i1b, f2, f4],
    keepFull: 2,
    removed: [i1b, i1a, f1],
  },
  {
    name: 'an incremental chain is kept with its full',
    backups: [f3, i3, f4],
    keepFull: 2,
    removed: [],
  },
  {
    name: 'max_age removes chains that ended longer ago',
    backups: [f1, i1a, f2, f3, i3, f4],
    keepFull: 7,
    maxAgeDays: 5,
    removed: [f2, i1a, f1],
  },
  {
    name: "max_age judges a chain by its newest member, not by its full's time",
    backups: [f3, i3, f4],
    keepFull: 7,
    maxAgeDays: 3.5,
    removed: [],
  },
  {
    name: 'the newest restorable full stays however old',
    backups: [f1, i1a, f2],
    keepFull: 7,
    maxAgeDays: 1,
    removed: [i1a, f1],
  },
  {
    name: 'a newer full without a GTID does not count as restorable: the older one stays',
    backups: [f2, full(1, '')],
    keepFull: 1,
    removed: [],
  },
  {
    name: 'a chain in use by a restore is kept beyond keep_full',
    backups: [f1, i1a, f2, f3, f4],
    keepFull: 1,
    inUse: [i1a.id],
    removed: [f3, f2],
  },
  {
    name: 'an incremental whose base is gone is left alone',
    backups: [i1b, f4],
    keepFull: 1,
    removed: [],
  },
];

for (const entry of cases)
  test(`retention: ${entry.name}`, () => {
    const plan = planRetention(
      entry.backups,
      {
        keepFull: entry.keepFull,
        ...(entry.maxAgeDays !== undefined ? { maxAgeMs: entry.maxAgeDays * DAY } : {}),
      },
      NOW,
      new Set(entry.inUse ?? []),
    );
    assert.deepEqual(
      plan.remove.map((decision) => decision.id),
      entry.removed.map((backup) => backup.id),
    );
    // Every backup is either kept or removed, each with a reason.
    assert.equal(plan.keep.length + plan.remove.length, entry.backups.length);
    for (const decision of [...plan.keep, ...plan.remove]) assert.ok(decision.reason.length > 5);
  });

test('retention: hosts are judged apart', () => {
  const db3 = { ...f1, id: 'db3/old-full', host: 'db3' };
  const plan = planRetention([f1, f4, db3], { keepFull: 1 }, NOW);
  assert.deepEqual(
    plan.remove.map((decision) => decision.id),
    [f1.id],
  );
});

/** A catalogue on disk: `<root>/<host>/<name>/switchyard-backup.json`. */
function catalogue(t: TestContext): {
  root: string;
  add(host: string, name: string, info?: Partial<BackupInfo>): string;
} {
  const root = mkdtempSync(join(tmpdir(), 'switchyard-catalogue-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  return {
    root,
    add(host, name, info = {}) {
      const path = join(root, host, name);
      mkdirSync(path, { recursive: true });
      writeFileSync(join(path, 'ibdata1'), 'x');
      writeFileSync(
        join(path, BACKUP_META),
        JSON.stringify({
          host,
          kind: 'full',
          path,
          gtidPosition: GTID,
          createdAt: '2026-02-01T00:00:00.000Z',
          sizeBytes: 1,
          ...info,
        }),
      );
      return path;
    },
  };
}

test('delete: only ids the catalogue lists; traversal and odd names refused before any path is built', (t) => {
  const { root, add } = catalogue(t);
  add('db2', '2026-02-01T00-00-00-000Z-full');
  // A sibling directory and a file outside the catalogue that traversal would reach.
  const outside = join(root, '..', `${root.split('/').pop()}-outside`);
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, BACKUP_META), '{}');
  try {
    for (const id of [
      '../x',
      'db2/..',
      'db2/../..',
      '..',
      'db2/a/b',
      '/etc/passwd',
      'db2/',
      '/db2',
      'db2/.incoming-1',
      'db2\\..\\x',
      'db2/%2e%2e',
      `../${outside.split('/').pop()}`,
      '',
    ])
      assert.throws(
        () => deleteFromCatalogue(root, id),
        (error: unknown) =>
          error instanceof CatalogueRefused &&
          (error.code === 'malformed' || error.code === 'not_found'),
        id,
      );
    assert.throws(() => parseBackupId('db2/..'), /not a backup id/);
    assert.ok(existsSync(outside), 'nothing outside the catalogue was touched');
    // A directory without metadata is not an entry either.
    mkdirSync(join(root, 'db2', 'notes'));
    assert.throws(() => deleteFromCatalogue(root, 'db2/notes'), /no backup db2\/notes/);
    assert.ok(existsSync(join(root, 'db2', 'notes')));
    assert.equal(
      deleteFromCatalogue(root, 'db2/2026-02-01T00-00-00-000Z-full').id,
      'db2/2026-02-01T00-00-00-000Z-full',
    );
    assert.deepEqual(readdirSync(join(root, 'db2')), ['notes']);
  } finally {
    rmSync(outside, { recursive: true, force: true });
  }
});

test('delete: refused while in use or while an incremental builds on it', (t) => {
  const { root, add } = catalogue(t);
  const base = add('db2', 'a-full');
  add('db2', 'b-inc', { kind: 'incremental', base, createdAt: '2026-02-02T00:00:00.000Z' });
  assert.throws(
    () => deleteFromCatalogue(root, 'db2/a-full'),
    (error: unknown) => error instanceof CatalogueRefused && error.code === 'has_dependents',
  );
  assert.throws(
    () => deleteFromCatalogue(root, 'db2/b-inc', new Set(['db2/b-inc'])),
    (error: unknown) => error instanceof CatalogueRefused && error.code === 'in_use',
  );
  deleteFromCatalogue(root, 'db2/b-inc');
  deleteFromCatalogue(root, 'db2/a-full');
  assert.deepEqual(readCatalogue(root).entries, []);
});

test('prune: journalled before and after; nothing removed when an entry cannot be read', async (t) => {
  const { root, add } = catalogue(t);
  for (const day of ['01', '02', '03'])
    add('db2', `2026-02-${day}-full`, { createdAt: `2026-02-${day}T00:00:00.000Z` });
  const journal = new MemoryJournal();
  const broken = join(root, 'db2', '2026-02-04-full');
  mkdirSync(broken);
  writeFileSync(join(broken, BACKUP_META), '{ not json');
  const skipped = await pruneBackups(
    localCatalogue(root, 'manager'),
    'db2',
    { keepFull: 1 },
    { journal, now: () => NOW },
  );
  assert.match(skipped.error ?? '', /listing .* failed, nothing pruned: .*2026-02-04-full/);
  assert.equal(readCatalogue(root, 'db2').entries.length, 3);
  assert.deepEqual(journal.read(), [], 'a skipped prune changes nothing and journals nothing');

  rmSync(broken, { recursive: true });
  const outcome = await pruneBackups(
    localCatalogue(root, 'manager'),
    'db2',
    { keepFull: 1 },
    { journal, now: () => NOW },
  );
  assert.equal(outcome.error, undefined);
  assert.deepEqual(
    outcome.removed.map((decision) => decision.id),
    ['db2/2026-02-02-full', 'db2/2026-02-01-full'],
  );
  assert.deepEqual(
    readCatalogue(root, 'db2').entries.map((entry) => entry.id),
    ['db2/2026-02-03-full'],
  );
  const entries = journal.read();
  assert.deepEqual(
    entries.map((entry) => [entry.event, entry.phase, entry.outcome ?? null]),
    [
      ['backup.prune', 'before', null],
      ['backup.prune', 'after', 'ok'],
    ],
  );
  assert.deepEqual(entries[0]?.inputs?.remove, ['db2/2026-02-02-full', 'db2/2026-02-01-full']);
  assert.equal(entries[0]?.action, entries[1]?.action);

  // A sandbox restore in another process leaves .restore-* while it reads the chain: hands off.
  add('db2', '2026-02-05-full', { createdAt: '2026-02-05T00:00:00.000Z' });
  mkdirSync(join(root, '.restore-db2-x'));
  const during = await pruneBackups(
    localCatalogue(root, 'manager'),
    'db2',
    { keepFull: 1 },
    { now: () => NOW },
  );
  assert.deepEqual(during.removed, []);
  assert.equal(readCatalogue(root, 'db2').entries.length, 2);
});

const validText = readFileSync(new URL('../fixtures/valid.yml', import.meta.url), 'utf8');
function problemsWith(backup: unknown): string[] {
  const config = yaml.load(validText) as Record<string, unknown>;
  config.backup = backup;
  return validateConfig(config).problems.map(formatProblem);
}

test('config: backup.retention defaults and validation name the key', () => {
  const config = yaml.load(validText) as Record<string, unknown>;
  config.backup = { dir: '/srv/backups' };
  const { config: loaded, problems } = validateConfig(config);
  assert.deepEqual(problems, []);
  assert.deepEqual(loaded?.backup?.retention, { keep_full: 7 });
  assert.deepEqual(problemsWith({ dir: '/b', retention: { keep_full: 3, max_age: '30d' } }), []);
  const parsed = validateConfig({
    ...(yaml.load(validText) as Record<string, unknown>),
    backup: { dir: '/b', retention: { max_age: '36h' } },
  });
  assert.equal(parsed.config?.backup?.retention.max_age, 36 * 3_600_000);

  const mistakes: Array<[unknown, RegExp]> = [
    [{ keep_full: 0 }, /^backup\.retention\.keep_full: must be at least 1/],
    [{ keep_full: 2.5 }, /^backup\.retention\.keep_full: must be a whole number/],
    [{ keep_full: '7' }, /^backup\.retention\.keep_full: must be a whole number/],
    [{ max_age: '30' }, /^backup\.retention\.max_age: "30" is not a duration/],
    [{ max_age: '0' }, /^backup\.retention\.max_age: must be a positive duration/],
    [{ max_age: 30 }, /^backup\.retention\.max_age: must be a duration string/],
    [{ keep: 3 }, /^backup\.retention\.keep: unknown key/],
  ];
  for (const [retention, expected] of mistakes) {
    const problems = problemsWith({ dir: '/b', retention });
    assert.equal(problems.length, 1, `${JSON.stringify(retention)}: ${problems.join('; ')}`);
    assert.match(problems[0] as string, expected);
  }
});

test('backup --list table: one row per backup with where it is kept; unlisted catalogues named', () => {
  const text = renderBackupList(
    {
      backups: [
        {
          id: 'db2/a-full',
          host: 'db2',
          keptBy: 'manager',
          kind: 'full',
          path: '/srv/backups/db2/a-full',
          gtidPosition: '0-1-5',
          createdAt: '2026-02-27T00:00:00.000Z',
          sizeBytes: 3 * 1048576,
        },
        {
          id: 'db2/b-inc',
          host: 'db2',
          keptBy: 'db1',
          kind: 'incremental',
          baseId: 'db2/a-full',
          path: '/b/db2/b-inc',
          gtidPosition: '0-1-9',
          createdAt: '2026-02-28T22:30:00.000Z',
          sizeBytes: 1048576,
        },
      ],
      sources: [
        { keptBy: 'manager', ok: true, count: 1 },
        { keptBy: 'db3', ok: false, count: 0, error: 'connect ECONNREFUSED' },
      ],
    },
    false,
    NOW,
  );
  assert.match(text, /HOST .*KEPT BY .*ID .*KIND .*TAKEN .*AGE .*GTID .*SIZE/);
  assert.match(
    text,
    /db2 .*manager .*db2\/a-full .*full .*2026-02-27T00:00:00Z .*2d 0h .*0-1-5 .*3\.0 MiB/,
  );
  assert.match(text, /db2 .*db1 .*db2\/b-inc .*incremental on a-full .*1h 30m/);
  assert.match(text, /could not list the backups kept by db3: connect ECONNREFUSED/);
  assert.equal(renderBackupList({ backups: [], sources: [] }, false), 'no backups\n');
});
