import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SwitchyardActuator } from '../../src/actuator/actuator.js';
import { RefusedError } from '../../src/actuator/types.js';
import { MemoryJournal } from '../../src/journal/journal.js';
import { openConnection, type Connection } from '../../src/mysql/connect.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { startSandbox, waitFor, type TestSandbox } from '../support/sandbox.js';

async function appConnection(sandbox: TestSandbox, host: string): Promise<Connection> {
  return openConnection({
    host: '127.0.0.1',
    port: sandbox.instance(host).port,
    user: 'app',
    password: 'app-pass',
    database: 'app',
  });
}

async function scalar(sandbox: TestSandbox, host: string, sql: string): Promise<string> {
  const [row] = await sandbox.instance(host).sql(sql);
  return String(Object.values(row ?? {})[0]);
}

async function replicationThreads(sandbox: TestSandbox, host: string): Promise<string> {
  const [status] = await sandbox.instance(host).sql('SHOW SLAVE STATUS');
  return `${String(status?.Slave_IO_Running)}/${String(status?.Slave_SQL_Running)}`;
}

test('MySQL actions on a real MariaDB cluster: fence, GTID wait, repoint, errant refusal, dry-run', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const db1 = sandbox.instance('db1');
  await db1.sql('CREATE DATABASE app');
  await db1.sql('CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(40))');
  // An application user without READ_ONLY ADMIN (ALL PRIVILEGES would include it and bypass read_only).
  await db1.sql("CREATE USER app@'%' IDENTIFIED BY 'app-pass'");
  await db1.sql("GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO app@'%'");
  // The optional separate actuator account (mysql.admin_user) holds READ_ONLY ADMIN, which MariaDB
  // 10.11 requires to SET GLOBAL read_only; the test uses it so that path is exercised.
  const adminPasswordFile = join(sandbox.dir, 'admin.pass');
  writeFileSync(adminPasswordFile, 'admin-pass\n', { mode: 0o600 });
  for (const instance of sandbox.instances.values()) {
    const connection = await instance.rootConnection();
    try {
      await connection.query('SET SESSION sql_log_bin=0');
      await connection.query("CREATE USER switchyard_admin@'%' IDENTIFIED BY 'admin-pass'");
      await connection.query("GRANT ALL PRIVILEGES ON *.* TO switchyard_admin@'%'");
    } finally {
      connection.destroy();
    }
  }
  const config = {
    ...sandbox.config,
    mysql: {
      ...sandbox.config.mysql,
      admin_user: 'switchyard_admin',
      admin_password_file: adminPasswordFile,
    },
  };
  const journal = new MemoryJournal();
  const actuator = new SwitchyardActuator(config, { journal });

  await t.test(
    'fence: app writes fail, its open session is killed, replication is untouched',
    async () => {
      const app = await appConnection(sandbox, 'db1');
      t.after(() => app.destroy());
      await app.query("INSERT INTO t (note) VALUES ('before fence')");
      const dumpsBefore = await db1.sql(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%' ORDER BY ID",
      );
      assert.equal(dumpsBefore.length, 2, 'db2 and db3 replicate from db1');

      const result = await actuator.fence('db1');
      assert.equal(result.readOnly, true);
      assert.ok(result.killedConnections >= 1, `killed ${result.killedConnections}`);
      assert.equal(await scalar(sandbox, 'db1', 'SELECT @@global.read_only'), '1');
      await assert.rejects(app.query('SELECT 1'), (error: Error & { code?: string }) => {
        assert.match(
          `${error.code} ${error.message}`,
          /PROTOCOL_CONNECTION_LOST|killed|closed|ER_CONNECTION_KILLED/i,
        );
        return true;
      });
      const fresh = await appConnection(sandbox, 'db1');
      t.after(() => fresh.destroy());
      await assert.rejects(
        fresh.query("INSERT INTO t (note) VALUES ('after fence')"),
        (error: Error & { errno?: number }) => {
          assert.equal(error.errno, 1290, 'ER_OPTION_PREVENTS_STATEMENT (read_only)');
          return true;
        },
      );
      const dumpsAfter = await db1.sql(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%' ORDER BY ID",
      );
      assert.deepEqual(
        dumpsAfter,
        dumpsBefore,
        'the binlog dump threads of the replicas are the same sessions',
      );
      assert.equal(await replicationThreads(sandbox, 'db3'), 'Yes/Yes');
      assert.equal(await replicationThreads(sandbox, 'db2'), 'Yes/Yes');
      const events = journal.entries.map((entry) => `${entry.event}:${entry.phase}`);
      assert.deepEqual(events, [
        'mysql.read_only_on:before',
        'mysql.read_only_on:after',
        'mysql.kill_clients:before',
        'mysql.kill_clients:after',
      ]);
      // Fencing again is harmless.
      const again = await actuator.fence('db1');
      assert.equal(again.readOnly, true);
    },
  );

  await t.test(
    'waitForGtid reaches a replicated position and times out on one that never comes',
    async () => {
      await db1.sql("INSERT INTO app.t (note) VALUES ('root write on the fenced master')");
      const position = await scalar(sandbox, 'db1', 'SELECT @@global.gtid_binlog_pos');
      assert.equal(await actuator.waitForGtid('db2', position, 10_000), true);
      assert.equal(
        await actuator.waitForGtid('db1', position, 1000),
        true,
        'a position in the host’s own binlog counts',
      );
      const started = Date.now();
      assert.equal(await actuator.waitForGtid('db3', '0-1-999999', 300), false);
      t.diagnostic(`waitForGtid timeout of 300 ms returned after ${Date.now() - started} ms`);
    },
  );

  await t.test(
    'repoint db3 from db1 to db2 keeps replication running and loses no row',
    async () => {
      for (let index = 0; index < 20; index++)
        await db1.sql('INSERT INTO app.t (note) VALUES (?)', [`db1 row ${index}`]);
      const db1Position = await scalar(sandbox, 'db1', 'SELECT @@global.gtid_binlog_pos');
      assert.equal(await actuator.waitForGtid('db2', db1Position, 10_000), true);
      await actuator.repoint('db3', 'db2');
      const [status] = await sandbox.instance('db3').sql('SHOW SLAVE STATUS');
      assert.equal(Number(status?.Master_Port), sandbox.instance('db2').port);
      assert.equal(await replicationThreads(sandbox, 'db3'), 'Yes/Yes');
      const db2 = sandbox.instance('db2');
      for (let index = 0; index < 20; index++)
        await db2.sql('INSERT INTO app.t (note) VALUES (?)', [`db2 row ${index}`]);
      const db2Position = await scalar(sandbox, 'db2', 'SELECT @@global.gtid_binlog_pos');
      assert.equal(await actuator.waitForGtid('db3', db2Position, 10_000), true);
      const expected = await scalar(sandbox, 'db2', 'SELECT COUNT(*) FROM app.t');
      assert.equal(expected, '42');
      assert.equal(await scalar(sandbox, 'db3', 'SELECT COUNT(*) FROM app.t'), expected);
      const [db3Sum] = await sandbox.instance('db3').sql('CHECKSUM TABLE app.t');
      const [db2Sum] = await db2.sql('CHECKSUM TABLE app.t');
      assert.equal(String(db3Sum?.Checksum), String(db2Sum?.Checksum));
      // Repointing to the master it already uses is a no-op in effect and stays running.
      await actuator.repoint('db3', 'db2');
      assert.equal(await replicationThreads(sandbox, 'db3'), 'Yes/Yes');
      // The former writer: its own writes are in its binlog, not in its gtid_slave_pos. It must start
      // after them, not re-apply them (that would stop on a duplicate key).
      await db1.sql("INSERT INTO app.t (note) VALUES ('last write on the old writer')");
      assert.equal(
        await actuator.waitForGtid(
          'db2',
          await scalar(sandbox, 'db1', 'SELECT @@global.gtid_binlog_pos'),
          10_000,
        ),
        true,
      );
      const db1Before = `slave ${await scalar(sandbox, 'db1', 'SELECT @@global.gtid_slave_pos')} binlog ${await scalar(sandbox, 'db1', 'SELECT @@global.gtid_binlog_pos')}`;
      await actuator.repoint('db1', 'db2');
      await db2.sql("INSERT INTO app.t (note) VALUES ('after repointing db1')");
      const latest = await scalar(sandbox, 'db2', 'SELECT @@global.gtid_binlog_pos');
      assert.equal(await actuator.waitForGtid('db1', latest, 10_000), true);
      assert.equal(await replicationThreads(sandbox, 'db1'), 'Yes/Yes');
      assert.equal(await scalar(sandbox, 'db1', 'SELECT COUNT(*) FROM app.t'), '44');
      assert.equal(await scalar(sandbox, 'db2', 'SELECT COUNT(*) FROM app.t'), '44');
      t.diagnostic(
        `db1 before repoint: ${db1Before}; gtid_slave_pos after ${await scalar(sandbox, 'db1', 'SELECT @@global.gtid_slave_pos')}`,
      );
    },
  );

  await t.test(
    'repoint to a master that lacks the replica’s transactions is refused, naming the GTIDs',
    async () => {
      const db3 = sandbox.instance('db3');
      // db3 must hold everything db2 has before it writes its own: an errant write made while a
      // replicated one is still in flight diverges instead of running ahead (and then stops db3's
      // SQL thread on an out-of-order GTID), which is another refusal than the one tested here.
      assert.equal(
        await actuator.waitForGtid(
          'db3',
          await scalar(sandbox, 'db2', 'SELECT @@global.gtid_binlog_pos'),
          10_000,
        ),
        true,
      );
      const connection = await db3.rootConnection();
      try {
        await connection.query('SET SESSION sql_log_bin=1');
        await connection.query("INSERT INTO app.t (note) VALUES ('errant 1')");
        await connection.query("INSERT INTO app.t (note) VALUES ('errant 2')");
      } finally {
        connection.destroy();
      }
      const errant = await scalar(sandbox, 'db3', 'SELECT @@global.gtid_binlog_pos');
      assert.match(errant, /^0-3-\d+$/);
      const before = journal.entries.length;
      await assert.rejects(actuator.repoint('db3', 'db1'), (error: Error) => {
        assert.ok(error instanceof RefusedError, error.name);
        assert.ok(error.message.includes(errant), `names ${errant}: ${error.message}`);
        assert.match(error.message, /2 transaction\(s\)/);
        t.diagnostic(`refusal: ${error.message}`);
        return true;
      });
      const [status] = await db3.sql('SHOW SLAVE STATUS');
      assert.equal(
        Number(status?.Master_Port),
        sandbox.instance('db2').port,
        'still replicating from db2: nothing changed',
      );
      assert.equal(await replicationThreads(sandbox, 'db3'), 'Yes/Yes');
      assert.deepEqual(
        journal.entries.slice(before).map((entry) => `${entry.event}:${entry.phase}`),
        ['mysql.repoint:refused'],
      );
    },
  );

  await t.test('stop and start replication, verified by thread state', async () => {
    await actuator.stopReplication('db3');
    assert.equal(await replicationThreads(sandbox, 'db3'), 'No/No');
    await actuator.stopReplication('db3');
    await actuator.startReplication('db3');
    assert.equal(await replicationThreads(sandbox, 'db3'), 'Yes/Yes');
    await assert.rejects(actuator.startReplication('db1-typo'), /unknown host "db1-typo"/);
  });

  await t.test('stop and start the IO thread alone; the SQL thread keeps running', async () => {
    await actuator.stopIoThread('db3');
    assert.equal(await replicationThreads(sandbox, 'db3'), 'No/Yes');
    // Resolves once the thread runs or connects, without waiting for it to reach its master.
    await actuator.startIoThread('db3');
    assert.match(await replicationThreads(sandbox, 'db3'), /^(Yes|Connecting|Preparing)\/Yes$/);
    await waitFor(
      'the IO thread connected again',
      async () => (await replicationThreads(sandbox, 'db3')) === 'Yes/Yes',
      10_000,
    );
  });

  await t.test('dry-run plans every action and changes nothing', async () => {
    const dryJournal = new MemoryJournal();
    const dry = new SwitchyardActuator(config, { dryRun: true, journal: dryJournal });
    const readOnlyBefore = await scalar(sandbox, 'db2', 'SELECT @@global.read_only');
    await dry.setReadOnly('db2', readOnlyBefore !== '1');
    const fenced = await dry.fence('db2');
    assert.deepEqual(fenced, { readOnly: true, killedConnections: 0 });
    await dry.repoint('db3', 'db1');
    await dry.stopReplication('db3');
    assert.equal(await dry.waitForGtid('db3', '0-1-999999', 5000), true);
    assert.equal(await scalar(sandbox, 'db2', 'SELECT @@global.read_only'), readOnlyBefore);
    await waitFor(
      'db3 still replicating',
      async () => (await replicationThreads(sandbox, 'db3')) === 'Yes/Yes',
      2000,
    );
    assert.deepEqual(
      dry.steps.map((step) => step.action),
      [
        'mysql.read_only_on',
        'mysql.read_only_on',
        'mysql.kill_clients',
        'mysql.repoint',
        'mysql.stop_slave',
        'mysql.gtid_wait',
      ].map((action, index) =>
        index === 0 && readOnlyBefore === '1' ? 'mysql.read_only_off' : action,
      ),
    );
    assert.ok(dryJournal.entries.every((entry) => entry.outcome === 'dry-run'));
    assert.match(
      dry.steps.find((step) => step.action === 'mysql.repoint')?.description ?? '',
      /MASTER_USE_GTID=slave_pos/,
    );
    assert.ok(!JSON.stringify(dry.steps).includes('MASTER_PASSWORD'), 'no password in plans');
  });

  await t.test(
    "starting replication towards a master that is gone ends when the IO thread reports it, not at the start timeout (15 s): the engine's lock waits on it",
    async () => {
      const [before] = await sandbox.instance('db3').sql('SHOW SLAVE STATUS');
      assert.equal(Number(before?.Master_Port), sandbox.instance('db2').port);
      await actuator.stopReplication('db3');
      await sandbox.instance('db2').kill();
      const started = Date.now();
      await assert.rejects(actuator.startReplication('db3'), (error: Error) => {
        assert.match(
          error.message,
          /replication is not running: IO Connecting, SQL Yes, IO error: .*for 2000 ms \(the channel is set; its IO thread tries again every \d+ s by itself\)/,
        );
        t.diagnostic(`gave up after ${Date.now() - started} ms: ${error.message}`);
        return true;
      });
      const [after] = await sandbox.instance('db3').sql('SHOW SLAVE STATUS');
      assert.equal(Number(after?.Master_Port), sandbox.instance('db2').port, 'the channel is kept');
      assert.equal(after?.Slave_SQL_Running, 'Yes');
    },
  );
});
