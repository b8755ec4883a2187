import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { validateConfig } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problems.js';

const base = yaml.load(
  readFileSync(new URL('../fixtures/valid.yml', import.meta.url), 'utf8'),
) as Record<string, unknown>;

test('checksum section: defaults in milliseconds, cron validated, table filters checked', () => {
  const { config } = validateConfig({ ...base });
  assert.deepEqual(config?.checksum, { chunk_time: 500, max_lag: 5000, schema: 'switchyard' });
  const custom = validateConfig({
    ...base,
    checksum: {
      schedule: '0 3 * * *',
      tables: ['app.items', 'app.*', 'other'],
      chunk_time: '250ms',
      max_lag: '2s',
    },
  });
  assert.deepEqual(custom.config?.checksum, {
    schedule: '0 3 * * *',
    tables: ['app.items', 'app.*', 'other'],
    chunk_time: 250,
    max_lag: 2000,
    schema: 'switchyard',
  });
  const bad = validateConfig({
    ...base,
    checksum: { schedule: 'every night', tables: ['a b'], chunk: 1 },
  }).problems.map(formatProblem);
  assert.ok(
    bad.some((line) => /checksum\.schedule.*cron/.test(line)),
    bad.join('\n'),
  );
  assert.ok(
    bad.some((line) => /checksum\.tables\[0\]/.test(line)),
    bad.join('\n'),
  );
  assert.ok(
    bad.some((line) => /checksum\.chunk.*unknown key/.test(line)),
    bad.join('\n'),
  );
});

test('backup section: dir required, method defaults to mariabackup, retention keeps 7 full backups', () => {
  assert.deepEqual(validateConfig({ ...base, backup: { dir: '/srv/backups' } }).config?.backup, {
    dir: '/srv/backups',
    method: 'mariabackup',
    retention: { keep_full: 7 },
  });
  const problems = validateConfig({
    ...base,
    backup: { method: 'tar', schedule: 'x' },
  }).problems.map(formatProblem);
  assert.ok(
    problems.some((line) => /backup\.dir/.test(line)),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((line) => /backup\.method/.test(line)),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((line) => /backup\.schedule/.test(line)),
    problems.join('\n'),
  );
});
