import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { agentConfigSchema, validateAgentConfig } from '../../src/agent/config.js';
import { agentConfigExample, managerConfigExample } from '../../src/config/example.js';
import { describeConfigKeys, flattenKeys } from '../../src/config/key-docs.js';
import { validateConfig } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problems.js';
import { configSchema } from '../../src/config/schema.js';
import { fleetKeysSchema } from '../../src/config/fleet.js';
import { CONFIG_REFERENCE_FILE, configReference } from '../../src/docs/config-reference.js';
import { METRICS_REFERENCE_FILE, metricsReference } from '../../src/docs/metrics-reference.js';

const root = new URL('../../', import.meta.url);
const checkedIn = (file: string) => readFileSync(new URL(file, root), 'utf8');
const schemas = [
  { file: "the manager's file", schema: configSchema },
  { file: 'a clusters: file', schema: fleetKeysSchema },
  { file: "the agent's file", schema: agentConfigSchema },
];

test('every config key of the manager and the agent says what it does and shows a value', () => {
  const missing: string[] = [];
  for (const { file, schema } of schemas)
    for (const key of flattenKeys(describeConfigKeys(schema))) {
      const where = `${file}: ${key.path}`;
      if (!key.meta.description?.trim())
        missing.push(
          `${where}: no description (add .meta({ description: '...' }) as the key's last call)`,
        );
      if (key.kind === 'value' && key.default === undefined && key.meta.example === undefined)
        missing.push(`${where}: no default, so it needs .meta({ example: ... })`);
      if ((key.kind === 'map' || key.kind === 'list') && key.meta.example === undefined)
        missing.push(`${where}: a ${key.kind} needs .meta({ example: ... }) with its entries`);
    }
  assert.deepEqual(missing, []);
});

test(`${CONFIG_REFERENCE_FILE} is what the schema generates (run npm run docs:config)`, () => {
  assert.equal(checkedIn(CONFIG_REFERENCE_FILE), configReference());
});

test(`${METRICS_REFERENCE_FILE} is what the metrics and alerts/ generate (run npm run docs:metrics)`, async () => {
  assert.equal(checkedIn(METRICS_REFERENCE_FILE), await metricsReference(root));
});

test('config example: the printed manager file is valid as it stands and names every key', () => {
  const text = managerConfigExample();
  const { problems } = validateConfig(yaml.load(text));
  assert.deepEqual(problems.map(formatProblem), []);
  for (const key of flattenKeys(describeConfigKeys(configSchema)))
    assert.match(text, new RegExp(`(^|\\s)(- )?${key.name}:`, 'm'), key.path);
});

test('config example --agent: the printed agent file is valid as it stands and names every key', () => {
  const text = agentConfigExample();
  const { problems } = validateAgentConfig(yaml.load(text), '/etc/switchyard/agent.yml');
  assert.deepEqual(problems.map(formatProblem), []);
  for (const key of flattenKeys(describeConfigKeys(agentConfigSchema)))
    assert.match(text, new RegExp(`(^|\\s)(- )?${key.name}:`, 'm'), key.path);
});
