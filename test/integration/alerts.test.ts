import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';
import { requireBinaries } from '../support/binaries.js';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const RULES = `${root}alerts/switchyard.rules.yml`;
const DESIGN_ALERTS = [
  'SwitchyardHostDown',
  'SwitchyardWriterDown',
  'SwitchyardNoWriter',
  'SwitchyardSplitBrain',
  'SwitchyardReplicationLagHigh',
  'SwitchyardReplicationBroken',
  'SwitchyardHostAwaitingRecovery',
  'SwitchyardChecksumMismatch',
  'SwitchyardChecksumStale',
  'SwitchyardBackupStale',
  'SwitchyardManagerDown',
  'SwitchyardGtidStrictModeOff',
  'Watchdog',
  'SwitchyardVipMismatch',
  'SwitchyardAgentDown',
  'SwitchyardNoLeader',
  'SwitchyardManagersDisagree',
  'SwitchyardFenceNotReady',
  'SwitchyardAgentProtocolMismatch',
  'SwitchyardRouteMismatch',
  'SwitchyardMonitorBehind',
];

test('alert rules: promtool check rules and promtool test rules pass', async (t) => {
  if (!requireBinaries(t, [['promtool', 'prometheus']])) return;
  const checked = await run('promtool', ['check', 'rules', RULES]);
  assert.match(checked.stdout, new RegExp(`SUCCESS: ${DESIGN_ALERTS.length} rules found`));
  const tested = await run('promtool', [
    'test',
    'rules',
    `${root}alerts/tests/switchyard.test.yml`,
  ]);
  assert.match(tested.stdout, /SUCCESS/);
});

test('every alert of the design exists, has a severity, summary, description and a runbook section that exists', () => {
  const rules = (
    yaml.load(readFileSync(RULES, 'utf8')) as {
      groups: Array<{
        rules: Array<{
          alert: string;
          labels: Record<string, string>;
          annotations: Record<string, string>;
        }>;
      }>;
    }
  ).groups.flatMap((group) => group.rules);
  assert.deepEqual(rules.map((rule) => rule.alert).sort(), [...DESIGN_ALERTS].sort());
  const runbook = readFileSync(`${root}docs/alerts.md`, 'utf8');
  const tests = readFileSync(`${root}alerts/tests/switchyard.test.yml`, 'utf8');
  for (const rule of rules) {
    assert.ok(
      ['critical', 'warning', 'none'].includes(rule.labels.severity as string),
      `${rule.alert} severity`,
    );
    assert.ok(
      rule.annotations.summary && rule.annotations.description,
      `${rule.alert} summary and description`,
    );
    assert.equal(rule.annotations.runbook, `docs/alerts.md#${rule.alert.toLowerCase()}`);
    assert.match(
      runbook,
      new RegExp(`^## ${rule.alert}$`, 'm'),
      `docs/alerts.md has a section for ${rule.alert}`,
    );
    assert.match(
      tests,
      new RegExp(`alertname: ${rule.alert}\\b`),
      `${rule.alert} has a promtool unit test`,
    );
  }
});
