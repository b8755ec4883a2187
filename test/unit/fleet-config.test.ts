import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { loadClusterConfig, readConfigs } from '../../src/config/conf-dir.js';
import { isClustersFile } from '../../src/config/fleet.js';
import { formatProblem } from '../../src/config/problems.js';

const base = yaml.load(
  readFileSync(new URL('../fixtures/valid.yml', import.meta.url), 'utf8'),
) as Record<string, unknown>;

/** A cluster section: the fixture without the process-level keys and state_dir. */
function section(cluster: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const { listen: _listen, auth: _auth, state_dir: _state, ...rest } = base;
  return { ...rest, cluster, ...extra };
}

function fileWith(t: { after(fn: () => void): void }, content: unknown, name = 'fleet.yml') {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-fleet-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, name);
  writeFileSync(file, yaml.dump(content));
  return { dir, file };
}

const lines = (problems: Array<{ path: string; message: string }>) => problems.map(formatProblem);

test('clusters: one file, several clusters; the top level gives every cluster its listener, tokens and a state sub-folder', (t) => {
  const { dir, file } = fileWith(t, {
    listen: '127.0.0.1:19105',
    auth: { token_file: 'token' },
    state_dir: 'state',
    clusters: [section('alpha'), section('beta', { state_dir: '/srv/beta' })],
  });
  assert.equal(isClustersFile(file), true);
  const { configs, problems } = readConfigs(file);
  assert.deepEqual(lines(problems), []);
  assert.deepEqual(
    configs.map((config) => [config.cluster, config.listen, config.state_dir]),
    [
      ['alpha', '127.0.0.1:19105', join(dir, 'state', 'alpha')],
      ['beta', '127.0.0.1:19105', '/srv/beta'],
    ],
  );
  // Relative paths of the top level are resolved against the file's folder, for every cluster.
  for (const config of configs) assert.equal(config.auth.token_file, join(dir, 'token'));
  // Commands that work on one cluster pick it by name; several and none named lists them.
  assert.equal(loadClusterConfig(file, 'beta').cluster, 'beta');
  assert.throws(
    () => loadClusterConfig(file, undefined),
    /cluster: 2 clusters here \(alpha, beta\): name one with --cluster NAME/,
  );
  assert.throws(() => loadClusterConfig(file, 'gamma'), /no cluster "gamma" here/);
});

test('clusters: without a top-level state_dir each cluster gets a sub-folder of the default', (t) => {
  const { file } = fileWith(t, {
    auth: { token_file: '/etc/switchyard/token' },
    clusters: [section('alpha'), section('beta')],
  });
  const { configs, problems } = readConfigs(file);
  assert.deepEqual(lines(problems), []);
  assert.deepEqual(
    configs.map((config) => config.state_dir),
    ['/var/lib/switchyard/alpha', '/var/lib/switchyard/beta'],
  );
});

test('clusters: problems name their key path inside the list; names and state_dirs collide; process keys only once', (t) => {
  const { file } = fileWith(t, {
    listen: '127.0.0.1:19105',
    auth: { token_file: '/etc/switchyard/token' },
    mode: 'passive',
    clusters: [
      section('alpha', { state_dir: '/x/same' }),
      section('alpha', { state_dir: '/x/same', monitor: { interval: '10' } }),
      section('gamma', { listen: '127.0.0.1:9999' }),
      section('delta', { listen: '127.0.0.1:19105' }),
      'not a section',
    ],
  });
  const { configs, problems } = readConfigs(file);
  const found = lines(problems);
  const has = (pattern: RegExp) =>
    assert.ok(
      found.some((line) => pattern.test(line)),
      found.join('\n'),
    );
  assert.deepEqual(configs, [], 'nothing runs while any cluster has a problem');
  has(
    /^mode: unknown key: a clusters: file holds only clusters, state_dir and the process-level keys/,
  );
  has(/^clusters\[1\]\.monitor\.interval: /);
  has(/^clusters\[2\]\.listen: differs from the top level's listen: .*process-level/);
  has(/^clusters\[4\]: must be a cluster section/);
  assert.equal(
    found.filter((line) => line.startsWith('clusters[2].listen')).length,
    1,
    'said once, where it is',
  );
  // delta repeats the top level's listen exactly: that is allowed.
  assert.ok(!found.some((line) => line.startsWith('clusters[3]')), found.join('\n'));

  const collide = fileWith(t, {
    auth: { token_file: '/etc/switchyard/token' },
    clusters: [
      section('alpha', { state_dir: '/x/same' }),
      section('alpha', { state_dir: '/x/same' }),
    ],
  });
  const collisions = lines(readConfigs(collide.file).problems);
  assert.ok(
    collisions.includes(
      'clusters[1].cluster: "alpha" is already used by clusters[0]: every cluster needs its own',
    ),
    collisions.join('\n'),
  );
  assert.ok(
    collisions.includes(
      'clusters[1].state_dir: "/x/same" is already used by clusters[0]: every cluster needs its own',
    ),
    collisions.join('\n'),
  );
});

test('clusters: entries that disagree on a process-level key the top level leaves out are named', (t) => {
  const { file } = fileWith(t, {
    clusters: [
      section('alpha', { auth: { token_file: '/etc/a.token' } }),
      section('beta', { auth: { token_file: '/etc/b.token' } }),
    ],
  });
  const found = lines(readConfigs(file).problems);
  assert.ok(
    found.some((line) =>
      /^clusters\[1\]\.auth: .*b\.token.* differs from clusters\[0\]'s .*a\.token.*process-level/.test(
        line,
      ),
    ),
    found.join('\n'),
  );
  const empty = fileWith(t, { clusters: [] });
  assert.ok(lines(readConfigs(empty.file).problems).some((line) => line.startsWith('clusters: ')));
});

test('conf.d: a file may itself be a clusters: list; names collide across files with both places named', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-fleet-confd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'a.yml'),
    yaml.dump({ ...base, cluster: 'alpha', state_dir: '/x/alpha' }),
  );
  writeFileSync(
    join(dir, 'b.yml'),
    yaml.dump({
      listen: base.listen,
      auth: base.auth,
      state_dir: '/x',
      clusters: [section('beta'), section('alpha')],
    }),
  );
  const { configs, problems } = readConfigs(dir);
  assert.deepEqual(configs, []);
  assert.deepEqual(lines(problems), [
    'b.yml: clusters[1].cluster: "alpha" is already used by a.yml: every cluster needs its own',
    'b.yml: clusters[1].state_dir: "/x/alpha" is already used by a.yml: every cluster needs its own',
  ]);
  writeFileSync(
    join(dir, 'b.yml'),
    yaml.dump({
      listen: base.listen,
      auth: base.auth,
      state_dir: '/x',
      clusters: [section('beta'), section('gamma')],
    }),
  );
  const ok = readConfigs(dir);
  assert.deepEqual(lines(ok.problems), []);
  assert.deepEqual(
    ok.configs.map((config) => `${config.cluster} ${config.state_dir}`),
    ['alpha /x/alpha', 'beta /x/beta', 'gamma /x/gamma'],
  );
});
