/**
 * rejoin --discard-errant saves an old writer's errant transactions with mariadb-binlog. Sequence
 * numbers belong to a GTID domain, not to a server: when the old writer applied a transaction of
 * the new writer (0-2-N, replicated to it master-master) between its last replicated one (0-1-N-1)
 * and its errant one (0-1-N+1), the errant range 0-1-N..N+1 names a number that server 1 never
 * wrote. The save must hold exactly the old writer's own errant transactions, and no other.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ClusterState } from '../../src/domain/cluster-state.js';
import { liveErrant, saveErrantEvents } from '../../src/transfer/rejoin.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

const NEEDS: Array<[string, string]> = [...MARIADB, ['mariadb-binlog', 'mariadb-client']];

/** db1 the old writer with one errant transaction and, just before it, one of db2's. */
async function divergedPair(t: TestContext) {
  const sandbox = await startSandbox(t, { masters: 2, replicas: 0 });
  const backups = mkdtempSync(join(tmpdir(), 'switchyard-errant-'));
  t.after(() => rmSync(backups, { recursive: true, force: true }));
  const config = {
    ...sandbox.config,
    backup: { dir: backups, method: 'mariabackup' as const, retention: { keep_full: 7 } },
  };
  const [db1, db2] = ['db1', 'db2'].map((name) => sandbox.instance(name)) as [
    ReturnType<typeof sandbox.instance>,
    ReturnType<typeof sandbox.instance>,
  ];
  await db1.sql('CREATE DATABASE IF NOT EXISTS errantdb');
  await db1.sql('CREATE TABLE IF NOT EXISTS errantdb.errant (id INT PRIMARY KEY)');
  await db1.sql('INSERT INTO errantdb.errant VALUES (1)');
  const caughtUp = async () => {
    const [one] = await db1.sql('SELECT @@gtid_binlog_pos AS pos');
    const [two] = await db2.sql('SELECT @@gtid_current_pos AS pos');
    return one?.pos === two?.pos;
  };
  await waitFor('db2 has db1 writes', caughtUp, 20_000);
  // db2 stops receiving from db1 (db1 is "lost"); db2 writes once, which db1 still applies;
  // then db1 commits one transaction db2 never gets: errant, with 0-2-N between.
  await db2.sql('STOP SLAVE');
  await db2.sql('INSERT INTO errantdb.errant VALUES (2)');
  const [between] = await db2.sql('SELECT @@gtid_binlog_pos AS pos');
  await waitFor('db1 applied db2 write', async () => {
    const [row] = await db1.sql('SELECT COUNT(*) AS n FROM errantdb.errant WHERE id = 2');
    return Number(row?.n) === 1;
  });
  await db1.sql('INSERT INTO errantdb.errant VALUES (424242)');
  const [state] = await db1.sql('SELECT @@gtid_binlog_state AS s');
  t.diagnostic(`db1 binlog state ${String(state?.s)}, db2 wrote ${String(between?.pos)}`);

  const { errant } = await liveErrant(
    config,
    { hosts: {} } as unknown as ClusterState,
    'db1',
    'db2',
  );
  return { config, db1, errant, state: String(state?.s), between: String(between?.pos), backups };
}

test(
  "an old writer's errant transactions are saved when another server's transaction sits between them and what the writer has",
  { timeout: 120_000 },
  async (t) => {
    if (!requireBinaries(t, NEEDS)) return;
    const { config, db1, errant, state, between } = await divergedPair(t);
    // A new binlog after the errant one, as after the fenced server's restart.
    await db1.sql('FLUSH BINARY LOGS');
    assert.equal(errant.length, 1, `one errant range: ${errant.join(', ')}`);
    const saved = await saveErrantEvents(config, 'db1', errant);
    const [last] = (state.match(/0-1-\d+/) ?? []) as string[];
    assert.deepEqual(saved.gtids, [last], 'exactly the errant transaction of db1');
    const text = readFileSync(saved.file, 'utf8');
    assert.match(text, /424242/);
    assert.match(text, new RegExp(`GTID ${last}\\b`));
    assert.doesNotMatch(
      text,
      new RegExp(`GTID ${between}\\b`),
      "db2's own transaction is not replayed",
    );
  },
);

test(
  'errant transactions purged from the binlogs: refused, nothing saved or discarded',
  { timeout: 120_000 },
  async (t) => {
    if (!requireBinaries(t, NEEDS)) return;
    const { config, db1, errant, backups } = await divergedPair(t);
    await db1.sql('FLUSH BINARY LOGS');
    const [current] = await db1.sql('SHOW MASTER STATUS');
    // A log is purged only once the crash-recovery checkpoint has moved past it.
    await waitFor('the errant binlog purged', async () => {
      await db1.sql(`PURGE BINARY LOGS TO '${String(current?.File)}'`);
      return (await db1.sql('SHOW BINARY LOGS')).length === 1;
    });
    await assert.rejects(
      saveErrantEvents(config, 'db1', errant),
      /purged errant transactions cannot be saved/,
    );
    assert.deepEqual(readdirSync(backups), [], 'no file written');
  },
);
