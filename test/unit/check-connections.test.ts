/**
 * The monitor's kept check connections, with fake connections: what is taken back out, what is
 * destroyed, and when a fresh login is due.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { CheckConnections, FRESH_LOGIN_EVERY_MS } from '../../src/monitor/check-connections.js';
import type { Connection } from '../../src/mysql/connect.js';

function fakeConnection(): Connection & { destroyed: boolean } {
  const connection = new EventEmitter() as EventEmitter & { destroyed: boolean; destroy(): void };
  connection.destroyed = false;
  connection.destroy = () => {
    connection.destroyed = true;
  };
  return connection as unknown as Connection & { destroyed: boolean };
}

test('check connections: a kept connection is taken once, and given back for the next check', () => {
  const connections = new CheckConnections(() => 0);
  const connection = fakeConnection();
  assert.equal(connections.take('db1'), undefined);
  connections.give('db1', connection);
  assert.equal(connections.take('db1'), connection);
  assert.equal(connections.take('db1'), undefined, 'two checks never share one');
  connections.give('db1', connection);
  assert.equal(connection.destroyed, false);
});

test('check connections: one the server closed while idle is destroyed, not handed out', () => {
  const connections = new CheckConnections(() => 0);
  const connection = fakeConnection();
  connections.give('db1', connection);
  // Unhandled, this would throw (and end a daemon): the kept connection listens for it.
  connection.emit('error', new Error('Connection lost: The server closed the connection.'));
  assert.equal(connections.take('db1'), undefined);
  assert.equal(connection.destroyed, true);
});

test('check connections: a fresh login is due once the kept one is FRESH_LOGIN_EVERY_MS old, counted from its first give', () => {
  let now = 1000;
  const connections = new CheckConnections(() => now);
  const connection = fakeConnection();
  connections.give('db1', connection);
  now += FRESH_LOGIN_EVERY_MS - 1;
  assert.equal(connections.take('db1'), connection);
  connections.give('db1', connection); // given back later: its age still counts from its login
  now += 1;
  assert.equal(connections.take('db1'), undefined);
  assert.equal(connection.destroyed, true);
});

test('check connections: close destroys what is kept, and what is given back afterwards', () => {
  const connections = new CheckConnections(() => 0);
  const kept = fakeConnection();
  const late = fakeConnection();
  connections.give('db1', kept);
  connections.close();
  connections.give('db2', late);
  assert.equal(kept.destroyed, true);
  assert.equal(late.destroyed, true);
  assert.deepEqual(connections.hosts(), []);
});
