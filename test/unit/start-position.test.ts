import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startPosition } from '../../src/mysql/start-position.js';

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
