/**
 * Configuration for routing without VIPs: the hooks section, and roles left without `ips`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { validateConfig } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problems.js';

const validText = readFileSync(new URL('../fixtures/valid.yml', import.meta.url), 'utf8');
const valid = () => yaml.load(validText) as Record<string, any>;

test('hooks: argv lists, a timeout in units (default 10s), pre_failover_aborts default false', () => {
  const raw = valid();
  raw.hooks = {
    pre_switchover: ['/usr/local/bin/drain-app', '--cluster', 'prod'],
    post_failover: ['/usr/local/bin/update-consul'],
  };
  const { config, problems } = validateConfig(raw);
  assert.deepEqual(problems, []);
  assert.deepEqual(config?.hooks, {
    pre_switchover: ['/usr/local/bin/drain-app', '--cluster', 'prod'],
    post_failover: ['/usr/local/bin/update-consul'],
    timeout: 10_000,
    pre_failover_aborts: false,
  });
  raw.hooks = { timeout: '2s', pre_failover_aborts: true, on_state_change: ['/bin/logger'] };
  assert.equal(validateConfig(raw).config?.hooks?.timeout, 2000);

  raw.hooks = {
    pre_switchover: '/usr/local/bin/drain-app --now',
    post_failover: [],
    post_switchover: [''],
    on_failover: ['/bin/true'],
  };
  const bad = validateConfig(raw).problems.map(formatProblem);
  for (const path of [
    'hooks.pre_switchover',
    'hooks.post_failover',
    'hooks.post_switchover[0]',
    'hooks.on_failover',
  ])
    assert.ok(
      bad.some((line) => line.startsWith(path)),
      `${path} in ${bad.join('\n')}`,
    );
});

test('roles without ips are valid: routed by health checks or hooks', () => {
  const raw = valid();
  delete raw.roles.writer.ips;
  delete raw.roles.reader.ips;
  const { config, problems } = validateConfig(raw);
  assert.deepEqual(problems, []);
  assert.deepEqual(config?.roles.writer?.ips, []);
  assert.deepEqual(config?.roles.reader?.ips, []);
});
