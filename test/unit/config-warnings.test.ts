import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { validateConfig } from '../../src/config/load.js';
import { configWarnings } from '../../src/config/warnings.js';

const validText = readFileSync(new URL('../fixtures/valid.yml', import.meta.url), 'utf8');

function warningsOf(mutate: (config: Record<string, any>) => void): string[] {
  const raw = yaml.load(validText) as Record<string, any>;
  mutate(raw);
  const { config, problems } = validateConfig(raw);
  assert.deepEqual(problems, []);
  return configWarnings(config!);
}

test('a config with rules has no warnings', () => {
  assert.deepEqual(
    warningsOf(() => undefined),
    [],
  );
});

test('alerts received but no rules: warned, differently when the monitor trigger is off', () => {
  const withMonitor = warningsOf((config) => {
    config.rules = [];
  });
  assert.equal(withMonitor.length, 1);
  assert.match(withMonitor[0] ?? '', /^rules: none, so alerts .* never acted on/);
  const alertsOnly = warningsOf((config) => {
    config.rules = [];
    config.triggers = { alertmanager: true, monitor: false };
  });
  assert.match(
    alertsOnly[0] ?? '',
    /roles move only when no webhook has arrived for triggers\.pipeline_timeout/,
  );
});

test('no rules with the Alertmanager trigger off is not worth a warning', () => {
  assert.deepEqual(
    warningsOf((config) => {
      config.rules = [];
      config.triggers = { alertmanager: false, monitor: true };
    }),
    [],
  );
});

test('writer candidates without agents: no lease, said per host, or for the whole cluster', () => {
  const one = warningsOf((config) => {
    delete config.hosts.db2.agent;
  });
  assert.deepEqual(one, [
    'hosts.db2: no agent, so no writer lease: cut off while the writer, it keeps taking writes from clients on its side',
  ]);
  const none = warningsOf((config) => {
    for (const host of Object.values(config.hosts) as Array<Record<string, unknown>>)
      delete host.agent;
    delete config.actuator?.vip;
  });
  assert.equal(none.length, 1, none.join('\n'));
  assert.match(
    none[0] ?? '',
    /^hosts: no writer candidate has an agent, so there is no writer lease/,
  );
});
