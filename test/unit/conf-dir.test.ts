import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { loadConfigs, readConfigDir } from '../../src/config/conf-dir.js';
import { formatProblem } from '../../src/config/problems.js';

const base = yaml.load(
  readFileSync(new URL('../fixtures/valid.yml', import.meta.url), 'utf8'),
) as Record<string, unknown>;

function dirWith(
  t: { after(fn: () => void): void },
  files: Record<string, Record<string, unknown>>,
): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-confd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files))
    writeFileSync(join(dir, name), yaml.dump(content));
  return dir;
}

test('conf.d: one cluster per file, each validated; cluster and state_dir must differ across files, listen (process-level) must agree', (t) => {
  const good = dirWith(t, {
    'a.yml': {
      ...base,
      cluster: 'alpha',
      listen: '127.0.0.1:19105',
      state_dir: '/var/lib/switchyard/alpha',
    },
    'b.yaml': {
      ...base,
      cluster: 'beta',
      listen: '127.0.0.1:19105',
      state_dir: '/var/lib/switchyard/beta',
    },
    'README.txt': {},
  });
  const ok = readConfigDir(good);
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(
    ok.configs.map((config) => config.cluster),
    ['alpha', 'beta'],
  );
  assert.equal(loadConfigs(good).length, 2);

  const bad = dirWith(t, {
    'a.yml': { ...base, cluster: 'alpha', listen: '127.0.0.1:19105', state_dir: '/x/a' },
    'b.yml': { ...base, cluster: 'alpha', listen: '127.0.0.1:19106', state_dir: '/x/b' },
    'c.yml': {
      ...base,
      cluster: 'gamma',
      listen: '127.0.0.1:19105',
      state_dir: '/x/c',
      monitor: { interval: '10' },
    },
  });
  const { configs, problems } = readConfigDir(bad);
  const lines = problems.map(formatProblem);
  assert.deepEqual(configs, [], 'nothing runs when any file is wrong');
  assert.ok(
    lines.some((line) => /^b\.yml: cluster: "alpha" is already used by a\.yml/.test(line)),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((line) =>
      /^b\.yml: listen: "127\.0\.0\.1:19106" differs from a\.yml's "127\.0\.0\.1:19105": .*process-level/.test(
        line,
      ),
    ),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((line) => /^c\.yml: monitor\.interval/.test(line)),
    lines.join('\n'),
  );
  assert.throws(() => loadConfigs(bad), /3 problem\(s\)|problem\(s\)/);
  assert.match(
    formatProblem(readConfigDir(dirWith(t, {})).problems[0] as { path: string; message: string }),
    /no \*\.yml files/,
  );
});
