import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ClusterState } from '../../src/domain/cluster-state.js';
import { FileStateStore, StateFileError } from '../../src/state/file-store.js';

const state = (cluster = 'c'): ClusterState => ({
  version: 1,
  cluster,
  mode: 'active',
  hosts: { db1: { state: 'ONLINE', reason: 'test', since: 1, failures: 0, flaps: [] } },
  roles: { writer: { '10.0.0.100': 'db1' } },
  updatedAt: 2,
});

test('state round-trips and no temporary file is left behind', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sy-store-')), 'state');
  const store = new FileStateStore(dir, 'c');
  assert.equal(await store.load(), undefined, 'a missing file is a fresh start');
  await store.save(state());
  assert.deepEqual(await store.load(), state());
  await store.save({ ...state(), mode: 'passive' });
  assert.equal((await store.load())?.mode, 'passive');
  assert.deepEqual(readdirSync(dir), ['state.json']);
});

test('a corrupt file is moved aside with a clear message, and the next load starts fresh', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-store-'));
  const store = new FileStateStore(dir, 'c');
  writeFileSync(store.file, '{"version": 1, "hosts": {');
  const outcome = store.loadChecked();
  assert.match(outcome.problem ?? '', /is not valid JSON.*moved it to .*state\.json\.corrupt-/);
  assert.equal(existsSync(store.file), false);
  assert.equal(readdirSync(dir).filter((name) => name.includes('corrupt')).length, 1);
  assert.equal(await store.load(), undefined);
});

test('a state file of another cluster or shape is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-store-'));
  const store = new FileStateStore(dir, 'c');
  writeFileSync(store.file, JSON.stringify(state('other')));
  await assert.rejects(
    store.load(),
    (error: Error) =>
      error instanceof StateFileError && /belongs to cluster "other"/.test(error.message),
  );
  writeFileSync(store.file, JSON.stringify({ hello: 'world' }));
  await assert.rejects(store.load(), /does not look like a Switchyard state file/);
});
