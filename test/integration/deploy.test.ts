import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { requireBinaries } from '../support/binaries.js';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const CLI = `${root}bin/switchyard.js`;

test('deploy/prometheus.yml passes promtool check config (rules included)', async (t) => {
  if (!requireBinaries(t, [['promtool', 'prometheus']])) return;
  const { stdout } = await run('promtool', ['check', 'config', `${root}deploy/prometheus.yml`]);
  assert.match(stdout, /SUCCESS: 1 rule files found/);
  // Every rule of alerts/switchyard.rules.yml, however many there are.
  const rules = (
    readFileSync(`${root}alerts/switchyard.rules.yml`, 'utf8').match(/^\s+- alert: /gm) ?? []
  ).length;
  assert.ok(rules >= 11);
  assert.match(stdout, new RegExp(`SUCCESS: ${rules} rules found`));
});

test('deploy/alertmanager.yml passes amtool check-config and sends resolved alerts with a bearer token file', async (t) => {
  if (!requireBinaries(t, [['amtool', 'prometheus-alertmanager']])) return;
  const { stdout } = await run('amtool', ['check-config', `${root}deploy/alertmanager.yml`]);
  assert.match(stdout, /SUCCESS/);
  const text = readFileSync(`${root}deploy/alertmanager.yml`, 'utf8');
  assert.match(text, /send_resolved: true/);
  assert.match(text, /credentials_file: \/etc\/switchyard\/token/);
  assert.match(text, /group_by: \[cluster, host, alertname\]/);
  assert.match(text, /alertname="Watchdog"/);
});

test('deploy/switchyard.yml and deploy/agent.yml pass switchyard checks; a broken copy does not', async () => {
  const manager = await run(process.execPath, [
    CLI,
    'config',
    'check',
    '-c',
    `${root}deploy/switchyard.yml`,
  ]);
  assert.match(manager.stdout, /: ok/);
  // Valid; its fence cannot log in here (no server on this machine), which --check says (exit 1).
  const agent = await run(process.execPath, [
    CLI,
    'agent',
    '--check',
    '-c',
    `${root}deploy/agent.yml`,
  ]).catch((error) => error as { code: number; stdout: string; stderr: string });
  assert.doesNotMatch(agent.stderr ?? '', /problem/);
  assert.match(agent.stdout, /FENCE NOT READY/);
  assert.match(agent.stdout, /fence: NOT READY: cannot log in as switchyard/);
  const dir = mkdtempSync(join(tmpdir(), 'sy-deploy-'));
  const broken = join(dir, 'switchyard.yml');
  writeFileSync(
    broken,
    readFileSync(`${root}deploy/switchyard.yml`, 'utf8').replace('prefer: db1', 'prefer: db3'),
  );
  const failed = await run(process.execPath, [CLI, 'config', 'check', '-c', broken]).catch(
    (error) => error as { code: number; stderr: string },
  );
  assert.equal((failed as { code: number }).code, 2);
});

/** systemd is not on the test machines: check the units' structure and hardening instead of systemd-analyze. */
function unitSections(file: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const header = /^\[(\w+)\]$/.exec(trimmed);
    if (header) {
      current = new Map();
      sections.set(header[1] as string, current);
      continue;
    }
    const pair = /^(\w+)=(.*)$/.exec(trimmed);
    assert.ok(pair && current, `${file}: not a key=value line inside a section: ${trimmed}`);
    current.set(pair[1] as string, pair[2] as string);
  }
  return sections;
}

test('systemd units: own user, hardened, capabilities only for the agent', () => {
  const manager = unitSections(`${root}deploy/switchyard.service`);
  const agent = unitSections(`${root}deploy/switchyard-agent.service`);
  for (const [name, unit] of [
    ['manager', manager],
    ['agent', agent],
  ] as const) {
    const service = unit.get('Service');
    assert.ok(
      service && unit.get('Unit') && unit.get('Install'),
      `${name}: Unit, Service and Install sections`,
    );
    assert.equal(service.get('User'), 'switchyard', `${name} runs as its own user`);
    assert.equal(service.get('NoNewPrivileges'), 'true');
    assert.equal(service.get('ProtectSystem'), 'strict');
    assert.match(
      service.get('ExecStart') ?? '',
      /bin\/switchyard\.js (run|agent) -c \/etc\/switchyard\//,
    );
  }
  assert.equal(
    manager.get('Service')?.get('CapabilityBoundingSet'),
    '',
    'the manager has no capabilities',
  );
  assert.equal(
    agent.get('Service')?.get('AmbientCapabilities'),
    'CAP_NET_ADMIN CAP_NET_RAW CAP_KILL',
  );
  assert.equal(manager.get('Service')?.get('ReadWritePaths'), '/var/lib/switchyard');
});

test('deploy/switchyard-fleet.conf: a drop-in that changes only the node flags and the config of the manager', () => {
  const unitCommand = unitSections(`${root}deploy/switchyard.service`)
    .get('Service')
    ?.get('ExecStart');
  assert.ok(unitCommand);
  const lines = readFileSync(`${root}deploy/switchyard-fleet.conf`, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  // systemd refuses a second ExecStart= for Type=simple unless the unit's is reset first.
  assert.deepEqual(lines.slice(0, 2), ['[Service]', 'ExecStart=']);
  assert.equal(lines.length, 3, 'nothing else of the unit is changed');
  const fleetWords = (lines[2] as string).replace(/^ExecStart=/, '').split(/\s+/);
  const unitWords = unitCommand.split(/\s+/);
  const script = (words: string[]) => words.find((word) => word.endsWith('/bin/switchyard.js'));
  assert.equal(fleetWords[0], unitWords[0], 'the same node');
  assert.equal(script(fleetWords), script(unitWords), 'the same install');
  assert.ok(fleetWords.includes('--max-semi-space-size=16'));
  assert.ok(!fleetWords.includes('--optimize-for-size'));
  assert.deepEqual(fleetWords.slice(-3), ['run', '-c', '/etc/switchyard/conf.d']);
});
