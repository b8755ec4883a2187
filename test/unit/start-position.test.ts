import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Connection } from '../../src/mysql/connect.js';
import { moveToServablePosition, startPosition } from '../../src/mysql/start-position.js';

test('a writer whose gtid_slave_pos names an old transaction of its peer starts from everything it has, once the master has it', () => {
  // db2 wrote 0-2-50..136 as the writer; its slave position still names db1's last, 0-1-5, which a
  // rebuilt db1 (binlog from 0-2-51 on) never held.
  const writer = { binlogPos: '0-2-136', slavePos: '0-1-5' };
  assert.deepEqual(startPosition(writer, '0-2-136'), {
    kind: 'move',
    start: '0-2-136',
    from: '0-1-5',
  });
  assert.deepEqual(startPosition(writer, '0-2-140,9-1-1'), {
    kind: 'move',
    start: '0-2-136',
    from: '0-1-5',
  });
});

test('a master still catching up is waited for: nothing moves while it lacks what the replica has', () => {
  assert.deepEqual(startPosition({ binlogPos: '0-2-136', slavePos: '0-1-5' }, '0-2-120'), {
    kind: 'master-behind',
    wanted: '0-2-136',
  });
  // A domain the master has never seen counts as missing too.
  assert.deepEqual(startPosition({ binlogPos: '0-2-10,9-2-3', slavePos: '0-2-10' }, '0-2-10'), {
    kind: 'master-behind',
    wanted: '0-2-10,9-2-3',
  });
});

test('a replica whose slave position already is everything it has keeps it', () => {
  assert.deepEqual(startPosition({ binlogPos: '0-1-99', slavePos: '0-1-99' }, '0-1-99'), {
    kind: 'keep',
    start: '0-1-99',
  });
  assert.deepEqual(startPosition({ binlogPos: '', slavePos: '' }, ''), { kind: 'keep', start: '' });
});

/** A replica connection that answers the position reads from `positions` and may refuse SETs. */
function fakeReplica(positions: Array<{ binlog: string; slave: string }>, refuseSets: number) {
  const statements: string[] = [];
  let reads = 0;
  let refusals = refuseSets;
  const connection = {
    async query(sql: string, values?: unknown[]) {
      statements.push(values ? `${sql} ${JSON.stringify(values)}` : sql);
      if (sql.startsWith('SELECT')) {
        const row = positions[Math.min(reads, positions.length - 1)];
        reads += 1;
        return [[row], []];
      }
      if (sql.startsWith('SET') && refusals > 0) {
        refusals -= 1;
        throw new Error(
          'Specified GTID 0-2-10 conflicts with the binary log which contains a more recent GTID 0-2-11',
        );
      }
      return [[], []];
    },
  };
  return { connection: connection as unknown as Connection, statements };
}

test('a replica that writes meanwhile (the writer) gets its position read again after a refused SET', async () => {
  const { connection, statements } = fakeReplica(
    [
      { binlog: '0-2-10', slave: '0-1-5' },
      { binlog: '0-2-11', slave: '0-1-5' },
    ],
    1,
  );
  const masters = ['0-2-10', '0-2-11'];
  let asked = 0;
  const decision = await moveToServablePosition(
    connection,
    async () => masters[Math.min(asked++, masters.length - 1)] as string,
    { deadline: Date.now() + 60_000, pollMs: 1 },
  );
  assert.deepEqual(decision, { kind: 'move', start: '0-2-11', from: '0-1-5' });
  assert.deepEqual(
    statements.filter((sql) => sql.startsWith('SET')),
    ['SET GLOBAL gtid_slave_pos = ? ["0-2-10"]', 'SET GLOBAL gtid_slave_pos = ? ["0-2-11"]'],
  );
});

test('a master that never gets what the replica has: nothing is changed once the deadline passed', async () => {
  const { connection, statements } = fakeReplica([{ binlog: '0-2-10', slave: '0-1-5' }], 0);
  const decision = await moveToServablePosition(connection, async () => '0-2-9', {
    deadline: Date.now() - 1,
  });
  assert.deepEqual(decision, { kind: 'master-behind', wanted: '0-2-10' });
  assert.deepEqual(
    statements.filter((sql) => !sql.startsWith('SELECT')),
    [],
  );
});
