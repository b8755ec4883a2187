import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { validateConfig } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problems.js';
import { nextTerm, termFloor, termOf, TermSequence, TERM_SHIFT } from '../../src/domain/fencing.js';

const base = yaml.load(
  readFileSync(new URL('../fixtures/valid.yml', import.meta.url), 'utf8'),
) as Record<string, unknown>;

test('ha section: optional; defaults; problems name their key path', () => {
  assert.equal(validateConfig({ ...base }).config?.ha, undefined, 'without ha nothing changes');
  const ok = validateConfig({ ...base, ha: { etcd: { endpoints: ['http://127.0.0.1:2379'] } } });
  assert.deepEqual(ok.config?.ha, {
    etcd: { endpoints: ['http://127.0.0.1:2379'], prefix: '/switchyard', timeout: 1000 },
    lease: 5000,
  });
  const cases: Array<[unknown, RegExp]> = [
    [{ etcd: { endpoints: [] } }, /ha\.etcd\.endpoints.*at least one/],
    [{ etcd: { endpoints: ['127.0.0.1:2379'] } }, /ha\.etcd\.endpoints\[0\].*http/],
    [{ etcd: { endpoints: ['http://a:1'], prefix: 'switchyard' } }, /ha\.etcd\.prefix/],
    [
      { etcd: { endpoints: ['http://a:1'] }, lease: '1500ms' },
      /ha\.lease.*whole seconds|ha\.lease.*at least 2s/,
    ],
    [{ etcd: { endpoints: ['http://a:1'] }, lease: '1s' }, /ha\.lease.*at least 2s/],
    [{ etcd: { endpoints: ['https://a:1'] } }, /ha\.etcd\.ca_file.*https/],
    [
      { etcd: { endpoints: ['https://a:1'], ca_file: 'ca', cert_file: 'crt' } },
      /ha\.etcd\.key_file/,
    ],
    [{ etcd: { endpoints: ['http://a:1'], username: 'sw' } }, /ha\.etcd\.password_file/],
    [
      { etcd: { endpoints: ['http://a:1'], password: 'inline' } },
      /ha\.etcd\.password.*unknown key/,
    ],
    [{ etcd: { endpoints: ['http://a:1'] }, advertise_url: 'mgr1:9105' }, /ha\.advertise_url/],
  ];
  for (const [ha, expected] of cases) {
    const problems = validateConfig({ ...base, ha }).problems.map(formatProblem);
    assert.ok(
      problems.some((line) => expected.test(line)),
      `${JSON.stringify(ha)}: ${problems.join('\n')}`,
    );
  }
});

test('fencing tokens: terms only grow and outrank clock-based and older-term sequence numbers', () => {
  const now = Date.UTC(2026, 10, 26);
  const first = nextTerm(0, now);
  assert.ok(
    first * TERM_SHIFT > now * 1000,
    "the first term outranks a single manager's clock-based numbers",
  );
  assert.equal(
    nextTerm(first, now),
    first + 1,
    'the next term is the previous + 1 when the clock did not move on',
  );
  assert.equal(
    nextTerm(5, now),
    termFloor(now),
    'a small stored term is lifted to the clock floor',
  );
  const old = new TermSequence();
  const current = new TermSequence();
  let oldest = 0;
  for (let i = 0; i < 10_000; i++) oldest = old.next(first) as number;
  const newest = current.next(first + 1) as number;
  assert.ok(newest > oldest);
  assert.equal(termOf(oldest), first);
  assert.equal(termOf(newest), first + 1);
  assert.ok(Number.isSafeInteger(newest));
  assert.equal(old.next(undefined), undefined);
  assert.ok(
    Number.isSafeInteger(termFloor(Date.UTC(2200, 0, 1)) * TERM_SHIFT + TERM_SHIFT - 1),
    'still exact in 2200',
  );
});

test('ha secrets: the etcd password file and client key must be private like every other secret', async (t) => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { parseConfigText } = await import('../../src/config/load.js');
  const { managerSecretFiles, secretFileProblems } =
    await import('../../src/config/secret-files.js');
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-ha-secret-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'etcd.pass'), 'secret\n', { mode: 0o644 });
  const { config } = parseConfigText(
    yaml.dump({
      ...base,
      ha: {
        etcd: { endpoints: ['http://127.0.0.1:2379'], username: 'sw', password_file: 'etcd.pass' },
      },
    }),
    join(dir, 'switchyard.yml'),
  );
  assert.ok(config);
  const problems = secretFileProblems(managerSecretFiles(config)).map((problem) =>
    JSON.stringify(problem),
  );
  assert.ok(
    problems.some((line) => line.includes('ha.etcd.password_file')),
    problems.join('\n'),
  );
});
