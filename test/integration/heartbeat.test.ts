/**
 * The heartbeat writer against real MariaDB servers: the one-statement beat (an anonymous
 * compound statement) replicates as the row it wrote, with the writer's server_id, and never
 * stops a replica's SQL thread, whatever the writer's binlog_format (ROW, MIXED, STATEMENT); a writer fenced under it (read_only=ON) gets no row and
 * no binlog event until it is writable again, and the refusal is logged.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import type { Logger } from '../../src/log.js';
import { HeartbeatWriter } from '../../src/monitor/heartbeat.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { writeTestConfig } from '../support/daemon.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('heartbeat: one statement per beat replicates as the row it wrote; a fenced writer gets nothing written or logged', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 1, replicas: 1 });
  const config = writeTestConfig(sandbox, 'heartbeat.yml', (raw) => {
    raw.heartbeat = { schema: 'switchyard', interval: '100ms' };
  });
  const replica = Object.keys(config.hosts).find((name) => name !== 'db1') as string;
  const db1 = sandbox.instance('db1');
  const db2 = sandbox.instance(replica);
  const events: Array<{ event?: string; reason?: string }> = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        events.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  ) as unknown as Logger;
  let heartbeat = new HeartbeatWriter({ config, log });
  heartbeat.start(() => 'db1');
  t.after(() => heartbeat.stop());

  const [writer] = await db1.sql('SELECT @@server_id AS id');
  const stampOn = async () =>
    String(
      (
        await db2.sql('SELECT ts FROM switchyard.heartbeat WHERE server_id = ?', [
          Number(writer?.id),
        ])
      )[0]?.ts ?? '',
    );
  await waitFor('the heartbeat row on the replica', async () => (await stampOn()) !== '', 10_000);
  // Every beat writes with the one-statement kind: the replica's copy of the row keeps moving
  // with the writer's server_id, and its SQL thread keeps running.
  const first = await stampOn();
  await waitFor('newer beats on the replica', async () => (await stampOn()) > first, 5000);
  const [status] = await db2.sql('SHOW SLAVE STATUS');
  assert.equal(status?.Slave_SQL_Running, 'Yes', String(status?.Last_SQL_Error));
  assert.equal(status?.Last_SQL_Errno, 0);
  const rows = await db2.sql('SELECT server_id FROM switchyard.heartbeat');
  assert.deepEqual(
    rows.map((row) => Number(row.server_id)),
    [Number(writer?.id)],
    'only the writer has a row',
  );

  // Fenced under the writer: no row and no binlog event while read_only is ON.
  await db1.sql('SET GLOBAL read_only = 1');
  await sleep(300); // a beat in flight when the fence landed has ended
  const [fenced] = await db1.sql('SELECT @@gtid_binlog_pos AS pos');
  await sleep(1000); // ten beats' worth
  const [after] = await db1.sql('SELECT @@gtid_binlog_pos AS pos');
  assert.equal(after?.pos, fenced?.pos, 'no binlog event on the fenced writer');
  assert.ok(
    events.some(
      (entry) => entry.event === 'heartbeat.skipped' && /db1 is read-only/.test(entry.reason ?? ''),
    ),
    `the refused beat is logged: ${JSON.stringify(events.slice(-3))}`,
  );

  await db1.sql('SET GLOBAL read_only = 0');
  const resumed = await stampOn();
  await waitFor('beats again once writable', async () => (await stampOn()) > resumed, 5000);

  // The sandbox logs rows; a user's server may log MIXED (MariaDB's default) or STATEMENT: the
  // statement inside the block is logged on its own, and replays with the writer's server_id.
  for (const format of ['MIXED', 'STATEMENT']) {
    await db1.sql(`SET GLOBAL binlog_format = '${format}'`);
    await heartbeat.stop();
    heartbeat = new HeartbeatWriter({ config, log }); // a new session, in the new format
    heartbeat.start(() => 'db1');
    const before = await stampOn();
    await waitFor(
      `beats on the replica with binlog_format=${format}`,
      async () => {
        // The first beat of a connection reads the server first: a later one must land too.
        const stamp = await stampOn();
        if (stamp <= before) return false;
        await sleep(300);
        return (await stampOn()) > stamp;
      },
      8000,
    );
    const [formatStatus] = await db2.sql('SHOW SLAVE STATUS');
    assert.equal(formatStatus?.Slave_SQL_Running, 'Yes', String(formatStatus?.Last_SQL_Error));
    assert.deepEqual(
      (await db2.sql('SELECT server_id FROM switchyard.heartbeat')).map((row) =>
        Number(row.server_id),
      ),
      [Number(writer?.id)],
      `binlog_format=${format}: only the writer's row`,
    );
  }
});
