import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { agentTokenSource } from '../../src/actuator/actuator.js';
import { validateAgentConfig } from '../../src/agent/config.js';
import { parseIpAddrJson } from '../../src/agent/vip-driver.js';
import { parseConfigText, validateConfig } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problems.js';

const example = `
listen: 10.0.0.11:9106
auth: { token_file: token }
vip: { interface: eth0, ips: [10.0.0.100, 10.0.0.101] }
snapshot: { method: btrfs, path: /var/lib/mysql }
`;

test('the DESIGN.md agent example is valid; a relative token file resolves against the file', () => {
  const { config, problems } = validateAgentConfig(yaml.load(example), '/etc/switchyard/agent.yml');
  assert.deepEqual(problems, []);
  assert.equal(config?.auth.token_file, '/etc/switchyard/token');
  assert.deepEqual(config?.vip?.ips, ['10.0.0.100', '10.0.0.101']);
});

test('agent config mistakes are reported with their key paths', () => {
  const cases: Array<[string, (raw: Record<string, any>) => void, RegExp]> = [
    ['unknown key', (raw) => (raw.colour = 'x'), /^colour: unknown key$/],
    ['missing listen', (raw) => delete raw.listen, /^listen: is required$/],
    ['no token source', (raw) => (raw.auth = {}), /^auth.token_file: set token_file or token_env/],
    ['two token sources', (raw) => (raw.auth.token_env = 'T'), /^auth.token_env: set only one/],
    ['bad IP', (raw) => (raw.vip.ips[1] = '10.0.0.300'), /^vip.ips\[1\]: must be an IPv4 address$/],
    ['duplicate IP', (raw) => raw.vip.ips.push('10.0.0.100'), /^vip.ips: an IP is listed twice$/],
    [
      'bad interface',
      (raw) => (raw.vip.interface = 'eth0; rm -rf /'),
      /^vip.interface: must be a network interface name$/,
    ],
    [
      'relative snapshot path',
      (raw) => (raw.snapshot.path = 'data'),
      /^snapshot.path: must be an absolute path$/,
    ],
    [
      'lvm without volume',
      (raw) => (raw.snapshot.method = 'lvm'),
      /^snapshot.volume: lvm needs "volume"/,
    ],
    ['unknown method', (raw) => (raw.snapshot.method = 'zfs'), /^snapshot.method: must be one of/],
    ['inline token', (raw) => (raw.auth.token = 'x'), /^auth.token: unknown key$/],
  ];
  for (const [what, mutate, expected] of cases) {
    const raw = yaml.load(example) as Record<string, any>;
    mutate(raw);
    const { problems } = validateAgentConfig(raw, '/tmp/agent.yml');
    assert.ok(
      problems.some((problem) => expected.test(formatProblem(problem))),
      `${what}: ${JSON.stringify(problems)}`,
    );
  }
  assert.match(formatProblem(validateAgentConfig([], 'x').problems[0]!), /must be a YAML mapping/);
});

test('ip -j addr output: IPv4 addresses with their prefixes', () => {
  const stdout = JSON.stringify([
    {
      ifindex: 2,
      ifname: 'eth0',
      addr_info: [
        { family: 'inet', local: '10.0.0.11', prefixlen: 24 },
        { family: 'inet', local: '10.0.0.100', prefixlen: 24, secondary: true },
        { family: 'inet6', local: 'fe80::1', prefixlen: 64 },
      ],
    },
  ]);
  assert.deepEqual(parseIpAddrJson(stdout), [
    { ip: '10.0.0.11', prefix: 24 },
    { ip: '10.0.0.100', prefix: 24 },
  ]);
  assert.deepEqual(parseIpAddrJson(''), []);
});

const manager = `
cluster: c
mysql: { user: switchyard, password_file: /p, replication_user: repl, replication_password_file: /r }
hosts:
  db1: { address: 10.0.0.11, agent: http://10.0.0.11:9106 }
roles:
  writer: { exclusive: true, hosts: [db1], ips: [10.0.0.100] }
auth: { token_file: /etc/switchyard/token }
actuator: { vip: { interface: eth0 } }
`;

test('manager config: agent token falls back to auth.token_*, its own keys win; vip.interface is required with agents and role IPs', () => {
  const { config } = parseConfigText(manager, '/etc/switchyard/switchyard.yml');
  assert.ok(config);
  assert.deepEqual(agentTokenSource(config), { file: '/etc/switchyard/token', env: undefined });
  assert.equal(config.actuator.agent_timeout, 3000);
  assert.equal(config.actuator.agent_retries, 2);
  assert.equal(config.actuator.vip?.prefix, 24);
  const own = parseConfigText(
    manager.replace(
      'actuator: { vip: { interface: eth0 } }',
      'actuator: { vip: { interface: eth0 }, agent_token_file: agent.token }',
    ),
    '/etc/switchyard/switchyard.yml',
  );
  assert.deepEqual(agentTokenSource(own.config!), { file: '/etc/switchyard/agent.token' });
  const env = parseConfigText(
    manager.replace(
      'actuator: { vip: { interface: eth0 } }',
      'actuator: { vip: { interface: eth0 }, agent_token_env: AGENT_TOKEN }',
    ),
    '/x.yml',
  );
  assert.deepEqual(agentTokenSource(env.config!), { env: 'AGENT_TOKEN' });

  const raw = yaml.load(manager) as Record<string, any>;
  raw.actuator = { agent_token_file: 'a', agent_token_env: 'B' };
  const problems = validateConfig(raw).problems.map(formatProblem);
  assert.ok(
    problems.includes(
      'actuator.agent_token_env: set only one of agent_token_file and agent_token_env',
    ),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((problem) =>
      problem.startsWith('actuator.vip: hosts db1 have agents and roles have IPs'),
    ),
    problems.join('\n'),
  );

  const admin = yaml.load(manager) as Record<string, any>;
  admin.mysql.admin_user = 'switchyard_admin';
  assert.ok(
    validateConfig(admin)
      .problems.map(formatProblem)
      .includes(
        'mysql.admin_password_file: admin_user needs admin_password_file or admin_password_env',
      ),
  );
  admin.mysql.admin_password_env = 'ADMIN_PW';
  assert.deepEqual(validateConfig(admin).problems, []);
});
