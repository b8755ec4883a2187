import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readSecret } from '../../src/config/secrets.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

/** Names every plain object answers to without holding them: they must never read as a host or role. */
const INHERITED_NAMES = [
  'constructor',
  '__proto__',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__defineGetter__',
];

test('inherited property names are unknown hosts and roles on every route and in the webhook; odd query strings and encodings are refused', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const config = writeTestConfig(sandbox, 'hostile.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
  });
  const token = readSecret({ file: config.auth.token_file }, 'token');
  const { daemon, url } = await startDaemon(t, config);
  await waitFor(
    'db1 to hold the writer role',
    async () => Object.values(daemon.status().roles.writer ?? {}).includes('db1'),
    20_000,
  );
  const call = (method: string, path: string, body?: unknown, headers = {}) =>
    fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const rolesBefore = JSON.stringify(daemon.status().roles);

  for (const name of INHERITED_NAMES) {
    const path = encodeURIComponent(name);
    const requests: Array<[string, string, unknown?]> = [
      ['POST', `/api/v1/hosts/${path}/online`],
      ['POST', `/api/v1/hosts/${path}/offline`],
      ['POST', `/api/v1/hosts/${path}/rejoin`, {}],
      ['POST', '/api/v1/hosts/db2/rejoin', { from: name }],
      ['POST', `/api/v1/roles/${path}/move`, { host: 'db2' }],
      ['POST', '/api/v1/roles/writer/move', { host: name }],
      ['POST', '/api/v1/roles/reader/move', { host: name }],
      ['GET', `/api/v1/checks?host=${path}`],
      ['POST', '/api/v1/transfers', { from: 'db1', to: name }],
      ['POST', '/api/v1/transfers', { from: name, to: 'db3' }],
      ['POST', '/api/v1/backups', { host: name }],
      ['POST', '/api/v1/restores', { host: name }],
    ];
    for (const [method, route, body] of requests) {
      const response = await call(method, route, body);
      const text = await response.text();
      assert.equal(response.status, 404, `${method} ${route} ${JSON.stringify(body)}: ${text}`);
    }
  }

  // A webhook naming an inherited host is ignored as an unknown host: nothing acts.
  const alerts = INHERITED_NAMES.map((name) => ({
    status: 'firing',
    labels: { alertname: 'SwitchyardWriterDown', cluster: 'sandbox', host: name },
    annotations: {},
    startsAt: '2026-11-25T03:00:00Z',
    fingerprint: `down-${name}`,
  }));
  const webhook = await call('POST', '/api/v1/alerts', { version: '4', status: 'firing', alerts });
  assert.equal(webhook.status, 200);
  const { decisions } = (await webhook.json()) as {
    decisions: Array<{ decision: string; reason?: string }>;
  };
  assert.equal(decisions.length, INHERITED_NAMES.length);
  for (const decision of decisions) {
    assert.notEqual(decision.decision, 'acted', JSON.stringify(decision));
    assert.match(decision.reason ?? '', /unknown host/, JSON.stringify(decision));
  }

  assert.equal(JSON.stringify(daemon.status().roles), rolesBefore, 'no role moved');
  const names = daemon.status().hosts.map((host) => host.name);
  assert.deepEqual(names.sort(), ['db1', 'db2', 'db3']);
  const stored = JSON.parse(readFileSync(join(config.state_dir, 'state.json'), 'utf8')) as {
    hosts: Record<string, unknown>;
  };
  assert.deepEqual(Object.keys(stored.hosts).sort(), ['db1', 'db2', 'db3'], 'state.json');

  // Smaller findings: query strings that Number() or express would read loosely.
  for (const query of [
    'since=',
    'limit=0x10',
    'limit=',
    'since=1e3',
    'since[]=1',
    'limit=1&limit=2',
  ])
    assert.equal((await call('GET', `/api/v1/journal?${query}`)).status, 400, query);
  assert.equal((await call('GET', '/api/v1/journal?since=0&limit=5')).status, 200);
  assert.equal((await call('GET', '/api/v1/checks?host[]=db1')).status, 400, 'host[]=');
  assert.equal((await call('GET', '/api/v1/checks?host=db1&host=db2')).status, 400, 'host twice');
  const brotli = await fetch(`${url}/api/v1/mode`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      'content-encoding': 'br',
    },
    body: 'not brotli at all',
  });
  assert.equal(brotli.status, 415, await brotli.text());
});
