import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

const TOKENS = {
  reader: 'scope-test-read-7f3a',
  am: 'scope-test-alerts-91bc',
  ops: 'scope-test-operate-44d0',
  root: 'scope-test-admin-e2a8',
} as const;
type Who = keyof typeof TOKENS;

test('scoped tokens: each scope against each endpoint; a refused request changes nothing; the journal names the token', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  for (const [name, value] of Object.entries(TOKENS))
    writeFileSync(join(sandbox.dir, `${name}.token`), `${value}\n`, { mode: 0o600 });
  const config = writeTestConfig(sandbox, 'scopes.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
    raw.metrics_auth = true;
    raw.auth = {
      tokens: [
        { name: 'reader', file: 'reader.token', scopes: ['read'] },
        { name: 'am', file: 'am.token', scopes: ['alerts'] },
        { name: 'ops', file: 'ops.token', scopes: ['operate'] },
        { name: 'root', file: 'root.token', scopes: ['admin'] },
      ],
    };
  });
  const { daemon, url } = await startDaemon(t, config);
  await waitFor(
    'db1 to hold the writer role',
    async () =>
      daemon.status().roles.writer?.['127.0.1.100'] === 'db1' ||
      Object.values(daemon.status().roles.writer ?? {}).includes('db1'),
    20_000,
  );
  await waitFor(
    'db3 to be ONLINE',
    async () => daemon.status().hosts.find((host) => host.name === 'db3')?.state === 'ONLINE',
    20_000,
  );

  const call = (who: Who | undefined, method: string, path: string, body?: unknown) =>
    fetch(`${url}${path}`, {
      method,
      headers: {
        ...(who ? { authorization: `Bearer ${TOKENS[who]}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const state = () =>
    JSON.stringify({
      roles: daemon.status().roles,
      mode: daemon.status().mode,
      hosts: daemon.status().hosts.map((host) => [host.name, host.state]),
    });

  // Authorized requests below are built to stop before they change anything (unknown host, bad
  // body), so the matrix itself moves nothing: anything but 401/403 shows the scope was accepted.
  const endpoints: Array<{ method: string; path: string; body?: unknown; scope: string }> = [
    { method: 'GET', path: '/api/v1/status', scope: 'read' },
    { method: 'GET', path: '/api/v1/checks', scope: 'read' },
    { method: 'GET', path: '/api/v1/analysis', scope: 'read' },
    { method: 'GET', path: '/api/v1/journal', scope: 'read' },
    { method: 'GET', path: '/metrics', scope: 'read' },
    { method: 'POST', path: '/api/v1/alerts', body: { version: '4' }, scope: 'alerts' },
    { method: 'POST', path: '/api/v1/hosts/db9/online', scope: 'operate' },
    { method: 'POST', path: '/api/v1/hosts/db9/offline', scope: 'operate' },
    { method: 'POST', path: '/api/v1/roles/writer/move', body: { host: 'db9' }, scope: 'operate' },
    { method: 'PUT', path: '/api/v1/mode', body: { mode: 'sideways' }, scope: 'operate' },
    { method: 'POST', path: '/api/v1/clone', body: {}, scope: 'admin' },
  ];
  const allowed: Record<Who, string[]> = {
    reader: ['read'],
    am: ['alerts'],
    ops: ['read', 'operate'],
    root: ['read', 'alerts', 'operate', 'admin'],
  };
  const before = state();
  const journalBefore = daemon.journal.read().length;
  for (const endpoint of endpoints) {
    const anonymous = await call(undefined, endpoint.method, endpoint.path, endpoint.body);
    assert.equal(anonymous.status, 401, `${endpoint.method} ${endpoint.path} without a token`);
    for (const who of Object.keys(TOKENS) as Who[]) {
      const response = await call(who, endpoint.method, endpoint.path, endpoint.body);
      const text = await response.text();
      if (allowed[who].includes(endpoint.scope)) {
        assert.ok(
          ![401, 403].includes(response.status),
          `${who} may ${endpoint.method} ${endpoint.path}: got ${response.status} ${text}`,
        );
      } else {
        assert.equal(
          response.status,
          403,
          `${who} may not ${endpoint.method} ${endpoint.path}: got ${response.status} ${text}`,
        );
        const body = JSON.parse(text) as { error: string; detail: string };
        assert.equal(body.error, 'forbidden');
        assert.match(body.detail, new RegExp(`^needs scope ${endpoint.scope}\\b`));
      }
    }
  }
  assert.equal(state(), before, 'the matrix changed nothing');
  assert.equal(
    daemon.journal.read().filter((entry) => entry.by !== undefined).length,
    daemon.journal
      .read()
      .slice(0, journalBefore)
      .filter((entry) => entry.by !== undefined).length,
    'no refused or malformed request was journaled as an action',
  );

  // An alerts token cannot move the writer: 403, and the writer stays where it was.
  const writerBefore = JSON.stringify(daemon.status().roles.writer);
  const readOnlyBefore = await sandbox.instance('db2').sql('SELECT @@read_only AS ro');
  const denied = await call('am', 'POST', '/api/v1/roles/writer/move', { host: 'db2' });
  assert.equal(denied.status, 403);
  assert.equal(
    ((await denied.json()) as { detail: string }).detail.startsWith('needs scope operate'),
    true,
  );
  await new Promise((resolve) => setTimeout(resolve, 2 * 300));
  assert.equal(
    JSON.stringify(daemon.status().roles.writer),
    writerBefore,
    'the writer role did not move',
  );
  assert.deepEqual(
    await sandbox.instance('db2').sql('SELECT @@read_only AS ro'),
    readOnlyBefore,
    'db2 stayed read-only',
  );

  // An operator action through the ops token: every journal entry it caused names "ops".
  const seqBefore = daemon.journal.read().at(-1)?.seq ?? 0;
  const offline = await call('ops', 'POST', '/api/v1/hosts/db3/offline');
  assert.equal(offline.status, 200, await offline.text());
  const caused = daemon.journal
    .read()
    .filter((entry) => entry.seq > seqBefore && entry.by !== undefined);
  assert.ok(
    caused.some((entry) => entry.event === 'host.set_offline' && entry.phase === 'decision'),
    JSON.stringify(caused),
  );
  assert.ok(
    caused.every((entry) => entry.by === 'ops'),
    JSON.stringify(caused),
  );
  const mode = await call('root', 'PUT', '/api/v1/mode', { mode: 'manual' });
  assert.equal(mode.status, 200);
  const modeEntry = daemon.journal
    .read()
    .filter((entry) => entry.event === 'mode.changed')
    .at(-1);
  assert.equal(modeEntry?.by, 'root');
  // The monitor loop's own entries carry no token name.
  const online = await call('ops', 'POST', '/api/v1/hosts/db3/online');
  assert.equal(online.status, 200, await online.text());
  const journal = (await (await call('reader', 'GET', '/api/v1/journal?limit=50')).json()) as {
    entries: Array<{ event: string; by?: string }>;
  };
  assert.ok(
    journal.entries.some((entry) => entry.event === 'host.set_online' && entry.by === 'ops'),
    'the journal endpoint shows who acted',
  );
});
