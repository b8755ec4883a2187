import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { validateAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import { createAgentApp } from '../../src/agent/server.js';
import { BACKUP_META } from '../../src/backup/backup.js';
import { silentLogger } from '../../src/log.js';
import { MemoryVipDriver, serveAgent } from '../support/memory-agent.js';

const TOKEN = 'agent-backups-test-token';

/** An agent whose snapshot.backup_dir holds db2/a-full and db2/b-inc (on a-full); undefined dir: none configured. */
async function agent(t: TestContext, withBackupDir = true) {
  const root = mkdtempSync(join(tmpdir(), 'switchyard-agent-backups-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'backups');
  const add = (name: string, info: Record<string, unknown>) => {
    const path = join(dir, 'db2', name);
    mkdirSync(path, { recursive: true });
    writeFileSync(
      join(path, BACKUP_META),
      JSON.stringify({ host: 'db2', path, gtidPosition: '0-1-5', sizeBytes: 1, ...info }),
    );
    return path;
  };
  const base = add('a-full', { kind: 'full', createdAt: '2026-01-01T00:00:00.000Z' });
  add('b-inc', { kind: 'incremental', base, createdAt: '2026-01-02T00:00:00.000Z' });
  // What a traversal would reach: a sibling of backup_dir that looks like a backup.
  mkdirSync(join(root, 'victim'));
  writeFileSync(join(root, 'victim', BACKUP_META), '{"kind":"full"}');
  const { config } = validateAgentConfig(
    {
      listen: '127.0.0.1:0',
      auth: { token_env: 'UNUSED_TOKEN' },
      ...(withBackupDir
        ? { snapshot: { method: 'mariabackup', path: '/var/lib/mysql', backup_dir: dir } }
        : {}),
    },
    join(root, 'agent.yml'),
  );
  const url = await serveAgent(
    t,
    createAgentApp({
      config: config as AgentConfig,
      driver: new MemoryVipDriver(),
      getToken: () => TOKEN,
      logger: silentLogger,
    }),
  );
  const call = async (method: string, path: string) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  return { root, dir, call };
}

test('agent GET /api/v1/backups lists its catalogue; without backup_dir an empty one', async (t) => {
  const { call, dir } = await agent(t);
  const listed = await call('GET', '/api/v1/backups');
  assert.equal(listed.status, 200);
  assert.equal(listed.body.backup_dir, dir);
  assert.deepEqual(
    listed.body.backups.map((entry: { id: string; baseId?: string }) => [
      entry.id,
      entry.baseId ?? null,
    ]),
    [
      ['db2/a-full', null],
      ['db2/b-inc', 'db2/a-full'],
    ],
  );
  assert.deepEqual((await call('GET', '/api/v1/backups?host=db1')).body.backups, []);
  assert.equal((await call('GET', '/api/v1/backups?host=../x')).status, 400);
  const none = await agent(t, false);
  assert.deepEqual((await none.call('GET', '/api/v1/backups')).body, {
    backup_dir: null,
    backups: [],
    problems: [],
  });
  assert.equal((await none.call('DELETE', '/api/v1/backups/db2/a-full')).status, 409);
});

test('agent DELETE /api/v1/backups/:host/:dir: catalogue ids only, no traversal, dependents first', async (t) => {
  const { call, root, dir } = await agent(t);
  for (const path of [
    '/api/v1/backups/..%2F..%2Fvictim/x',
    '/api/v1/backups/db2/..%2F..%2F..%2Fvictim',
    '/api/v1/backups/db2/.incoming-1',
    '/api/v1/backups/db2/a-full%00',
  ]) {
    const answer = await call('DELETE', path);
    assert.equal(answer.status, 400, `${path}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.error, 'malformed');
  }
  // Dot segments (literal or %2E-encoded) are resolved by the URL before routing: they never reach the route.
  for (const path of ['/api/v1/backups/db2/../../victim', '/api/v1/backups/%2E%2E/victim'])
    assert.notEqual((await call('DELETE', path)).status, 200, path);
  assert.equal((await call('DELETE', '/api/v1/backups/db2/victim')).status, 404);
  assert.ok(
    existsSync(join(root, 'victim', BACKUP_META)),
    'nothing outside backup_dir was touched',
  );

  const refused = await call('DELETE', '/api/v1/backups/db2/a-full');
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error, 'has_dependents');
  assert.deepEqual((await call('DELETE', '/api/v1/backups/db2/b-inc')).body, {
    deleted: 'db2/b-inc',
  });
  assert.deepEqual((await call('DELETE', '/api/v1/backups/db2/a-full')).body, {
    deleted: 'db2/a-full',
  });
  assert.ok(!existsSync(join(dir, 'db2', 'a-full')));
  assert.equal((await call('DELETE', '/api/v1/backups/db2/a-full')).status, 404);
});
