import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { AgentBackupStore } from '../../src/agent/transfer/backup-store.js';
import { validateAgentConfig } from '../../src/agent/config.js';
import { TransferRefused } from '../../src/agent/transfer/target.js';
import {
  BACKUP_META,
  restoreBackup,
  RestoreRefused,
  type BackupInfo,
} from '../../src/backup/backup.js';
import type { LoadedConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { checkSpace, findBackup, RemoteBackups } from '../../src/transfer/remote-backup.js';
import { Reseeder, ReseedRefused, type TransferProgress } from '../../src/transfer/reseed.js';

/** A manager config whose agents do not exist: every refusal must come before any agent is called. */
function setup(t: TestContext, backup: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'sy-remote-backup-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'agent.token'), 'x'.repeat(32));
  const host = (agent?: string) => ({
    address: '10.0.0.1',
    port: 3306,
    ...(agent ? { agent } : {}),
  });
  const config = {
    source: join(dir, 'switchyard.yml'),
    hosts: {
      db1: host('http://127.0.0.1:9'),
      db2: host('http://127.0.0.1:9'),
      db3: host('http://127.0.0.1:9'),
      db4: host(),
    },
    auth: { token_file: join(dir, 'agent.token') },
    actuator: {},
    ...(backup ? { backup: { dir: 'backups', method: 'mariabackup' } } : {}),
  } as unknown as LoadedConfig;
  const reseeder = new Reseeder(config);
  return { dir, config, reseeder, backups: new RemoteBackups(config, reseeder) };
}

function addBackup(dir: string, host: string, name: string, info: Partial<BackupInfo> = {}): void {
  const path = join(dir, 'backups', host, name);
  mkdirSync(path, { recursive: true });
  writeFileSync(
    join(path, BACKUP_META),
    JSON.stringify({
      host,
      kind: 'full',
      path,
      gtidPosition: '0-1-5',
      createdAt: name,
      sizeBytes: 100,
      ...info,
    }),
  );
}

const refused = (pattern: RegExp) => (error: Error) =>
  error instanceof ReseedRefused && pattern.test(error.message);

test('a backup through the agents is refused before anything moves: no backup section, a missing or non-directory backup.dir, unknown hosts, hosts without an agent, a transfer already running', async (t) => {
  const none = setup(t, false);
  await assert.rejects(none.backups.startBackup('db2'), refused(/no "backup" section/));

  const { dir, backups, reseeder } = setup(t, true);
  await assert.rejects(backups.startBackup('db2'), refused(/backup\.dir .*backups does not exist/));
  writeFileSync(join(dir, 'backups'), 'a file');
  await assert.rejects(backups.startBackup('db2'), refused(/is not a directory/));
  rmSync(join(dir, 'backups'));
  mkdirSync(join(dir, 'backups'));
  await assert.rejects(backups.startBackup('db9'), refused(/unknown host "db9"/));
  await assert.rejects(backups.startBackup('db4'), refused(/db4 has no agent URL/));
  const running: TransferProgress = {
    id: 'x',
    operation: 'clone',
    from: 'db2',
    to: 'db3',
    phase: 'receiving',
    wireBytes: 0,
    rawBytes: 0,
    estimatedBytes: 0,
    elapsedSeconds: 0,
    rate: 0,
  };
  reseeder.track(running);
  await assert.rejects(
    backups.startBackup('db2'),
    refused(/a transfer \(clone db2 -> db3\) is already running with db2/),
  );
  reseeder.untrack('x');
  // A partial copy left by a daemon that died mid-backup goes with the next backup of that host.
  mkdirSync(join(dir, 'backups', 'db2', '.incoming-dead'), { recursive: true });
  addBackup(dir, 'db2', '2026-01-01T00-00-00-000Z-full');
  // The agent does not answer: refused too (no offer, nothing was sent or written).
  await assert.rejects(
    backups.startBackup('db2'),
    refused(/the agent of db2 did not offer a copy/),
  );
  assert.deepEqual(
    readdirSync(join(dir, 'backups', 'db2')),
    ['2026-01-01T00-00-00-000Z-full'],
    'the stale staging directory is gone, the backup stays, nothing was written',
  );
  assert.deepEqual(reseeder.inProgress(), []);
});

test('too little space in backup.dir shows the estimate and the free space', async (t) => {
  const { dir } = setup(t, true);
  await assert.rejects(
    checkSpace(dir, 2 ** 60),
    refused(
      /not enough free space on .*: the copy is estimated at .* \(\d+ bytes; .* with margin\) and .* are free/,
    ),
  );
  await checkSpace(dir, 1);
});

test('a restore through the agents is refused before anything moves: the writer, a host in service, an incremental, a backup that is not there', async (t) => {
  const { dir, config, backups, reseeder } = setup(t, true);
  const states = { db1: 'ONLINE', db2: 'ONLINE', db3: 'ADMIN_OFFLINE' };
  const restore = (host: string, backup?: string, extra: Record<string, string> = {}) =>
    backups.startRestore({ host, backup, writer: 'db1', states: { ...states, ...extra } });
  await assert.rejects(restore('db3'), refused(/there is no full backup in/));
  addBackup(dir, 'db2', '2026-01-01T00-00-00-000Z-full');
  addBackup(dir, 'db2', '2026-01-02T00-00-00-000Z-inc', { kind: 'incremental' });
  addBackup(dir, 'db1', '2025-12-01T00-00-00-000Z-full');
  await assert.rejects(
    restore('db1', undefined, { db1: 'ADMIN_OFFLINE' }),
    refused(/db1 is the writer/),
  );
  await assert.rejects(
    restore('db2'),
    refused(/db2 is ONLINE; only a host in ADMIN_OFFLINE or AWAITING_RECOVERY/),
  );
  await assert.rejects(restore('db3', 'db2/nope'), refused(/no backup "db2\/nope"/));
  await assert.rejects(
    restore('db3', 'db2/2026-01-02T00-00-00-000Z-inc'),
    refused(/incremental backup; a restore through the agents sends full backups only/),
  );
  await assert.rejects(
    restore('db4', undefined, { db4: 'ADMIN_OFFLINE' }),
    refused(/db4 has no agent URL/),
  );
  // The newest full backup by default, or the one named (by <host>/<dir> or the directory alone).
  assert.equal(findBackup(config, undefined).createdAt, '2026-01-01T00-00-00-000Z-full');
  assert.equal(findBackup(config, '2025-12-01T00-00-00-000Z-full').host, 'db1');
  // The agent does not answer: refused, and the transfer is not left counted as running.
  await assert.rejects(restore('db3'), refused(/db3's agent failed the restore/));
  assert.deepEqual(reseeder.inProgress(), []);
});

test('an agent keeping backups: snapshot.backup_dir must be absolute; receives are refused before anything moves; only stored full backups are offered', async (t) => {
  const relativeDir = validateAgentConfig(
    {
      listen: '127.0.0.1:9106',
      auth: { token_file: '/t' },
      snapshot: { method: 'mariabackup', path: '/var/lib/mysql', backup_dir: 'backups' },
    },
    '/etc/switchyard/agent.yml',
  );
  assert.deepEqual(
    relativeDir.problems.map((problem) => `${problem.path}: ${problem.message}`),
    ['snapshot.backup_dir: must be an absolute path'],
  );

  const { dir } = setup(t, true);
  const keep = join(dir, 'backups');
  const store = new AgentBackupStore({ dir: keep, log: silentLogger });
  const request = (estimatedBytes: number, host = 'db2') =>
    store.receive({
      id: 'b1',
      host,
      source: { url: 'http://127.0.0.1:9', token: 'x'.repeat(32) },
      estimatedBytes,
    });
  const refusedWith = (code: string, pattern: RegExp) => (error: Error) =>
    error instanceof TransferRefused && error.code === code && pattern.test(error.message);
  await assert.rejects(request(1), refusedWith('not_configured', /backups does not exist/));
  mkdirSync(keep);
  await assert.rejects(request(1, '../etc'), refusedWith('malformed', /not a host name/));
  await assert.rejects(
    request(2 ** 60),
    refusedWith('insufficient_space', /estimated at .* are free/),
  );
  assert.deepEqual(readdirSync(keep), [], 'nothing was written');

  addBackup(dir, 'db2', '2026-01-01T00-00-00-000Z-full');
  addBackup(dir, 'db2', '2026-01-02T00-00-00-000Z-inc', { kind: 'incremental' });
  assert.equal(store.find('db2/2026-01-01T00-00-00-000Z-full').gtidPosition, '0-1-5');
  assert.throws(() => store.find('../../etc'), refusedWith('malformed', /not <host>\/<directory>/));
  assert.throws(() => store.find('db2/nope'), refusedWith('not_found', /no backup db2\/nope/));
  assert.throws(
    () => store.find('db2/2026-01-02T00-00-00-000Z-inc'),
    refusedWith('incremental', /only full backups/),
  );
});

test('a sandbox restore refuses a snapshot copy taken through an agent (mariabackup could not prepare it)', async (t) => {
  const { dir, config } = setup(t, true);
  addBackup(dir, 'db2', '2026-01-01T00-00-00-000Z-full', { format: 'snapshot' });
  await assert.rejects(
    restoreBackup(config, 'db3', join(dir, 'backups', 'db2', '2026-01-01T00-00-00-000Z-full'), {
      writer: 'db1',
      connect: () => Promise.reject(new Error('not used')),
    }),
    (error: Error) => error instanceof RestoreRefused && /is a snapshot copy/.test(error.message),
  );
});
