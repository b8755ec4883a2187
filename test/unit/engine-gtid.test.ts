import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mariadbGtid, parsePosition as parseGtidPosition } from '../../src/mysql/gtid.js';

test('parses MariaDB positions, several domains, empty', () => {
  assert.equal(parseGtidPosition('').size, 0);
  const position = parseGtidPosition('0-1-100, 1-2-5');
  assert.equal(position.get(0)?.seq, 100n);
  assert.equal(position.get(1)?.server, 2);
  assert.throws(() => parseGtidPosition('0-1'), /not a MariaDB GTID/);
  assert.throws(
    () => parseGtidPosition('3E11FA47-71CA-11E1-9E33-C80AA9429562:23'),
    /not a MariaDB GTID/,
  );
});

test('contains / missing / missingCount compare per domain', () => {
  assert.ok(mariadbGtid.contains('0-1-100', '0-1-99'));
  assert.ok(mariadbGtid.contains('0-1-100', '0-1-100'));
  assert.ok(!mariadbGtid.contains('0-1-99', '0-1-100'));
  assert.deepEqual(mariadbGtid.missing('0-1-97', '0-1-100'), ['0-1-98..100']);
  assert.deepEqual(mariadbGtid.missing('0-1-100', '0-1-100,1-3-4'), ['1-3-1..4']);
  assert.equal(mariadbGtid.missingCount('0-1-97', '0-1-100,1-3-4'), 7);
  // Same sequence number written by two servers: diverged at the tip.
  assert.deepEqual(mariadbGtid.missing('0-2-100', '0-1-100'), ['0-1-100']);
});

test('merge keeps the most advanced GTID per domain', () => {
  assert.equal(mariadbGtid.merge('0-1-100,1-2-3', '0-1-105', ''), '0-1-105,1-2-3');
});
