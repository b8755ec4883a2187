import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  flavorOf,
  parseReplicationStatus,
  replicationStatusQuery,
} from '../../src/mysql/dialect.js';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as Record<
    string,
    unknown
  >;

test('flavor and query per server', () => {
  assert.equal(flavorOf('10.11.19-MariaDB-0+deb12u1-log'), 'mariadb');
  assert.equal(flavorOf('8.0.36'), 'mysql');
  assert.equal(replicationStatusQuery('mariadb'), 'SHOW SLAVE STATUS');
  assert.equal(replicationStatusQuery('mysql'), 'SHOW REPLICA STATUS');
});

test('MariaDB 10.11 SHOW SLAVE STATUS (captured from a sandbox)', () => {
  const status = parseReplicationStatus(fixture('mariadb-10.11-show-slave-status.json'));
  assert.ok(status);
  assert.equal(status.masterHost, '127.0.0.1');
  assert.equal(status.masterPort, 25306);
  assert.equal(status.ioRunning, true);
  assert.equal(status.sqlRunning, true);
  assert.equal(status.secondsBehindMaster, 0);
  assert.equal(status.relayBacklog, false);
  assert.equal(status.lastIoError, '');
});

test('MySQL 8 SHOW REPLICA STATUS: Source_/Replica_ names, GTID sets, NULL lag, SQL error, backlog', () => {
  const status = parseReplicationStatus(fixture('mysql-8.0-show-replica-status.json'));
  assert.ok(status);
  assert.equal(status.masterHost, '10.0.0.11');
  assert.equal(status.masterPort, 3306);
  assert.equal(status.ioRunning, true);
  assert.equal(status.sqlRunning, false);
  assert.equal(status.secondsBehindMaster, null);
  assert.match(status.lastSqlError, /Duplicate entry/);
  assert.equal(status.gtidIoPos, '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-50');
  assert.equal(status.relayBacklog, true, 'read 9876 > executed 5000');
});

test('IO thread Connecting is not running; an empty result means no replication', () => {
  const connecting = parseReplicationStatus({
    ...fixture('mariadb-10.11-show-slave-status.json'),
    Slave_IO_Running: 'Connecting',
    Last_IO_Error: 'error reconnecting to master',
  });
  assert.equal(connecting?.ioRunning, false);
  assert.equal(connecting?.ioState, 'Connecting');
  assert.equal(parseReplicationStatus(undefined), undefined);
  assert.equal(parseReplicationStatus({}), undefined);
});
