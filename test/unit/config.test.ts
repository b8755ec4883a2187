import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { parseConfigText, validateConfig } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problems.js';

const validText = readFileSync(new URL('../fixtures/valid.yml', import.meta.url), 'utf8');
const valid = () => yaml.load(validText) as Record<string, any>;

function problemsOf(mutate: (config: Record<string, any>) => void): string[] {
  const config = valid();
  mutate(config);
  return validateConfig(config).problems.map(formatProblem);
}

test('the DESIGN.md example is valid and durations become milliseconds', () => {
  const { config, problems } = validateConfig(valid());
  assert.deepEqual(problems, []);
  assert.ok(config);
  assert.equal(config.monitor.interval, 1000);
  assert.equal(config.monitor.flap.window, 600_000);
  assert.equal(config.heartbeat.interval, 500);
  assert.equal(config.roles.reader?.exclusive, false);
  assert.equal(config.hosts.db1?.port, 3306);
});

test('relative secret and state paths resolve against the config file folder', () => {
  const text = validText
    .replace('/etc/switchyard/mysql.pass', 'mysql.pass')
    .replace('/var/lib/switchyard', 'state');
  const { config } = parseConfigText(text, '/opt/cluster/switchyard.yml');
  assert.equal(config?.mysql.password_file, '/opt/cluster/mysql.pass');
  assert.equal(config?.state_dir, '/opt/cluster/state');
});

const mistakes: Array<[string, (config: Record<string, any>) => void, string]> = [
  ['unknown top-level key', (c) => (c.colour = 'blue'), 'colour: unknown key'],
  ['unknown nested key', (c) => (c.monitor.intervall = '1s'), 'monitor.intervall: unknown key'],
  [
    'role names an unknown host',
    (c) => c.roles.writer.hosts.push('db9'),
    'roles.writer.hosts[2]: unknown host "db9"',
  ],
  ['peer is not a host', (c) => (c.hosts.db1.peer = 'db7'), 'hosts.db1.peer: unknown host "db7"'],
  [
    'duplicate IP across roles',
    (c) => (c.roles.reader.ips[1] = '10.0.0.100'),
    'roles.reader.ips[1]: IP 10.0.0.100 is already used by role "writer"',
  ],
  [
    'exclusive role with two IPs',
    (c) => c.roles.writer.ips.push('10.0.0.99'),
    'roles.writer.ips: an exclusive role holds exactly one IP, found 2',
  ],
  [
    'duration without unit',
    (c) => (c.monitor.interval = '10'),
    'monitor.interval: "10" is not a duration',
  ],
  [
    'wrong type',
    (c) => (c.monitor.failures_before_down = 'three'),
    'monitor.failures_before_down: Invalid input: expected number',
  ],
  ['bad enum', (c) => (c.mode = 'yolo'), 'mode: must be one of "active", "passive", "manual"'],
  ['missing required key', (c) => delete c.cluster, 'cluster: is required'],
  [
    'no secret source',
    (c) => delete c.mysql.password_file,
    'mysql.password_file: set password_file or password_env',
  ],
  [
    'both secret sources',
    (c) => (c.mysql.password_env = 'PW'),
    'mysql.password_env: set only one of password_file and password_env',
  ],
  [
    'inline password is not a key',
    (c) => (c.mysql.password = 'hunter2'),
    'mysql.password: unknown key',
  ],
  [
    'bad IP',
    (c) => (c.roles.writer.ips[0] = '10.0.0.300'),
    'roles.writer.ips[0]: must be an IPv4 address',
  ],
  [
    'prefer not in role',
    (c) => (c.roles.writer.prefer = 'db3'),
    'roles.writer.prefer: "db3" is not one of this role\'s hosts',
  ],
  [
    'rule names unknown role',
    (c) => (c.rules[0].roles = ['readers']),
    'rules[0].roles[0]: unknown role "readers"',
  ],
  [
    'move_role without role',
    (c) => delete c.rules[2].role,
    'rules[2].role: move_role needs "role"',
  ],
  ['bad listen address', (c) => (c.listen = '9105'), 'listen: must be HOST:PORT'],
  ['port out of range', (c) => (c.hosts.db2.port = 70000), 'hosts.db2.port:'],
  [
    'peers that do not name each other',
    (c) => (c.hosts.db2.peer = 'db3'),
    'hosts.db1.peer: "db2" names "db3" as its peer',
  ],
  ['peer is a replica', (c) => (c.hosts.db2.peer = 'db3'), 'hosts.db2.peer: "db3" is a replica'],
  [
    'replica in the writer role',
    (c) => c.roles.writer.hosts.push('db3'),
    'roles.writer.hosts[2]: "db3" is a replica',
  ],
  [
    'two hosts on one endpoint',
    (c) => (c.hosts.db2.address = '10.0.0.11'),
    'hosts.db2.address: same address and port as host "db1"',
  ],
  ['no auth token', (c) => (c.auth = {}), 'auth.token_file: set token_file, token_env or tokens'],
  [
    'scoped token without a source',
    (c) => (c.auth.tokens = [{ name: 'am', scopes: ['alerts'] }]),
    'auth.tokens[0].file: set file or env',
  ],
  [
    'scoped token with an unknown scope',
    (c) => (c.auth.tokens = [{ name: 'am', file: 'am.token', scopes: ['alerts', 'root'] }]),
    'auth.tokens[0].scopes[1]: must be one of "read", "alerts", "operate", "admin"',
  ],
  [
    'scoped token with no scope',
    (c) => (c.auth.tokens = [{ name: 'am', file: 'am.token', scopes: [] }]),
    'auth.tokens[0].scopes: list at least one scope',
  ],
  [
    'two tokens with one name',
    (c) =>
      (c.auth.tokens = [
        { name: 'x', env: 'A', scopes: ['read'] },
        { name: 'x', env: 'B', scopes: ['read'] },
      ]),
    'auth.tokens[1].name: token name "x" is used twice',
  ],
  [
    'a scoped token named like the admin token',
    (c) => (c.auth.tokens = [{ name: 'admin', env: 'A', scopes: ['read'] }]),
    'auth.tokens[0].name: "admin" is the name of auth.token_file',
  ],
  [
    'an inline token value',
    (c) => (c.auth.tokens = [{ name: 'am', token: 'abc', env: 'A', scopes: ['read'] }]),
    'auth.tokens[0].token: unknown key',
  ],
  [
    'only scoped tokens and agents with no token',
    (c) => (c.auth = { tokens: [{ name: 'am', env: 'A', scopes: ['alerts'] }] }),
    'actuator.agent_token_file: agents need a token',
  ],
  [
    'mysql.tls without a CA',
    (c) => (c.mysql.tls = { verify_identity: true }),
    'mysql.tls.ca_file: is required',
  ],
  [
    'mysql.tls client certificate without its key',
    (c) => (c.mysql.tls = { ca_file: 'ca.crt', cert_file: 'client.crt' }),
    'mysql.tls.key_file: cert_file and key_file go together',
  ],
  [
    'listener tls without a key',
    (c) => (c.tls = { cert_file: 'server.crt' }),
    'tls.key_file: is required',
  ],
  [
    'agent client certificate without its key',
    (c) => (c.actuator.agent_cert_file = 'manager.crt'),
    'actuator.agent_key_file: agent_cert_file and agent_key_file go together',
  ],
  ['bad metrics_listen', (c) => (c.metrics_listen = '9104'), 'metrics_listen: must be HOST:PORT'],
  [
    'unknown snapshot method',
    (c) => (c.actuator.snapshot.method = 'zfs'),
    'actuator.snapshot.method: must be one of',
  ],
];

for (const [kind, mutate, expected] of mistakes) {
  test(`config mistake: ${kind}`, () => {
    const problems = problemsOf(mutate);
    assert.ok(
      problems.some((problem) => problem.startsWith(expected)),
      `expected a problem starting with\n  ${expected}\ngot\n  ${problems.join('\n  ')}`,
    );
  });
}

test('scoped tokens alone are a valid auth section; relative token files resolve against the config folder', () => {
  const raw = valid();
  raw.auth = {
    tokens: [
      { name: 'am', file: 'am.token', scopes: ['alerts'] },
      { name: 'ops', env: 'OPS_TOKEN', scopes: ['operate', 'read'] },
    ],
  };
  raw.actuator.agent_token_file = 'agent.token';
  const { config, problems } = parseConfigText(yaml.dump(raw), '/opt/cluster/switchyard.yml');
  assert.deepEqual(problems, []);
  assert.equal(config?.auth.tokens?.[0]?.file, '/opt/cluster/am.token');
  assert.deepEqual(config?.auth.tokens?.[1]?.scopes, ['operate', 'read']);
});

test('every problem is reported at once, not only the first', () => {
  const problems = problemsOf((c) => {
    c.colour = 'blue';
    c.monitor.interval = '10';
    c.roles.writer.hosts.push('db9');
    c.mode = 'yolo';
  });
  assert.ok(problems.length >= 4, problems.join('\n'));
});

test('invalid YAML names the line', () => {
  const { problems } = parseConfigText('cluster: [unclosed\n', 'x.yml');
  assert.match(problems[0]?.path ?? '', /^line \d+/);
  assert.match(problems[0]?.message ?? '', /not valid YAML/);
});

test('a YAML scalar or list is not a config', () => {
  assert.match(validateConfig('hello').problems[0]?.message ?? '', /mapping/);
  assert.match(validateConfig([1, 2]).problems[0]?.message ?? '', /mapping/);
});

test('config problems never echo a secret written where it does not belong', () => {
  const secret = 'inline-secret-3f9d';
  const problems = problemsOf((c) => {
    c.mysql.password = secret;
    c.auth.token = secret;
    c.auth.token_env = `${secret} value`;
    c.auth.tokens = [
      { name: 'am', env: secret, scopes: [secret] },
      { name: secret.repeat(9), file: 'x', scopes: ['read'] },
    ];
    c.actuator.agent_token_env = `=${secret}`;
  });
  assert.ok(problems.length >= 5, problems.join('\n'));
  for (const problem of problems) assert.ok(!problem.includes(secret), problem);
});
