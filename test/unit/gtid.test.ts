import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  comparePositions,
  contains,
  describeMissing,
  formatMysqlGtidSet,
  formatPosition,
  GtidParseError,
  mergePositions,
  missingFrom,
  mostAdvanced,
  parseGtid,
  parseMysqlGtidSet,
  parsePosition,
  subtractMysqlGtidSet,
  totalSequence,
} from '../../src/mysql/gtid.js';

test('parse and format MariaDB positions round-trip in canonical order', () => {
  assert.equal(formatPosition(parsePosition('1-2-5, 0-1-10\n')), '0-1-10,1-2-5');
  assert.equal(formatPosition(parsePosition('')), '');
  assert.equal(parsePosition(null).size, 0);
  assert.equal(parsePosition(undefined).size, 0);
  assert.equal(
    formatPosition(parsePosition('0-1-18446744073709551615')),
    '0-1-18446744073709551615',
  );
  assert.deepEqual(parseGtid('3-4294967295-7'), { domain: 3, server: 4294967295, seq: 7n });
});

test('malformed positions are rejected with the offending text', () => {
  for (const bad of [
    '0-1',
    'a-b-c',
    '0-1-2-3',
    '0-1-x',
    '-1-2-3',
    '0-4294967296-1',
    '0-1-18446744073709551616',
    '0 1 2',
  ]) {
    assert.throws(() => parsePosition(bad), GtidParseError, bad);
  }
  assert.throws(() => parsePosition('0-1-5,0-2-6'), /domain 0 appears twice/);
});

test('missingFrom names transactions one side lacks, per domain', () => {
  assert.deepEqual(missingFrom('0-1-10', '0-1-10'), []);
  assert.deepEqual(missingFrom('0-1-10', '0-1-12'), []);
  const ahead = missingFrom('0-3-12', '0-1-10');
  assert.equal(ahead.length, 1);
  assert.equal(ahead[0]?.domain, 0);
  assert.equal(ahead[0]?.diverged, false);
  assert.match(describeMissing(ahead), /domain 0: 2 transaction\(s\) after 0-1-10, up to 0-3-12/);
  // A domain the other side has never seen.
  const newDomain = missingFrom('0-1-10,5-3-2', '0-1-10');
  assert.equal(newDomain.length, 1);
  assert.match(describeMissing(newDomain), /domain 5: up to 5-3-2 \(the other side has nothing/);
  // Same sequence, different server: two different transactions.
  const diverged = missingFrom('0-3-10', '0-1-10');
  assert.equal(diverged[0]?.diverged, true);
  assert.match(describeMissing(diverged), /0-3-10 differs from 0-1-10/);
  // Several domains: only the ones that lack something are named.
  assert.deepEqual(
    missingFrom('0-1-10,1-2-20,2-2-3', '0-1-10,1-2-19,2-2-9').map((range) => range.domain),
    [1],
  );
});

test('contains and comparePositions', () => {
  assert.equal(contains('0-1-10,1-2-5', '0-1-9'), true);
  assert.equal(contains('0-1-9', '0-1-10'), false);
  assert.equal(contains('0-1-9', ''), true);
  assert.equal(comparePositions('0-1-10', '0-1-10'), 'equal');
  assert.equal(comparePositions('0-1-11', '0-1-10'), 'ahead');
  assert.equal(comparePositions('0-1-10', '0-1-10,1-1-1'), 'behind');
  assert.equal(comparePositions('0-1-11,1-1-1', '0-1-10,1-1-2'), 'diverged');
  assert.equal(comparePositions('0-2-10', '0-1-10'), 'diverged');
});

test('mergePositions takes the higher sequence per domain and refuses divergence', () => {
  assert.equal(
    formatPosition(mergePositions('0-1-10,1-1-3', '0-3-12', '2-2-1')),
    '0-3-12,1-1-3,2-2-1',
  );
  assert.equal(formatPosition(mergePositions('0-1-10', '0-1-10')), '0-1-10');
  assert.throws(() => mergePositions('0-1-10', '0-2-10'), /diverged/);
});

test('mostAdvanced picks the host that has everything, preferring the first on ties', () => {
  const result = mostAdvanced([
    { item: 'db2', position: '0-1-10' },
    { item: 'db1', position: '0-1-12' },
    { item: 'db3', position: '0-1-12' },
  ]);
  assert.deepEqual(result, { ok: true, winner: 'db1', tiedWith: ['db3'] });
  const single = mostAdvanced([{ item: 'db1', position: '' }]);
  assert.equal(single.ok && single.winner, 'db1');
  assert.equal(mostAdvanced([]).ok, false);
});

test('mostAdvanced refuses when no candidate contains the others, and says why', () => {
  const result = mostAdvanced([
    { item: 'db1', position: '0-1-12,1-2-3' },
    { item: 'db2', position: '0-1-10,1-2-5' },
    { item: 'db3', position: '0-1-9' },
  ]);
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.deepEqual(result.frontier, ['db1', 'db2']);
  assert.match(
    result.reason,
    /db1 lacks from db2: domain 1: 2 transaction\(s\) after 1-2-3, up to 1-2-5/,
  );
  assert.match(
    result.reason,
    /db2 lacks from db1: domain 0: 2 transaction\(s\) after 0-1-10, up to 0-1-12/,
  );
  const diverged = mostAdvanced([
    { item: 'a', position: '0-1-10' },
    { item: 'b', position: '0-2-10' },
  ]);
  assert.equal(diverged.ok, false);
});

test('totalSequence sums domains', () => {
  assert.equal(totalSequence('0-1-10,1-2-5'), 15n);
  assert.equal(totalSequence(''), 0n);
});

test('MySQL GTID sets: parse, normalise, format, subtract', () => {
  const uuidA = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
  const uuidB = '4e11fa47-71ca-11e1-9e33-c80aa9429562';
  const set = parseMysqlGtidSet(`${uuidB}:1-3,\n${uuidA.toUpperCase()}:1-5:7:6:10-12`);
  assert.equal(formatMysqlGtidSet(set), `${uuidA}:1-7:10-12,${uuidB}:1-3`);
  const missing = subtractMysqlGtidSet(set, parseMysqlGtidSet(`${uuidA}:2-6:11`));
  assert.equal(formatMysqlGtidSet(missing), `${uuidA}:1:7:10:12,${uuidB}:1-3`);
  assert.equal(formatMysqlGtidSet(subtractMysqlGtidSet(set, set)), '');
  assert.throws(() => parseMysqlGtidSet('nope:1-2'), GtidParseError);
  assert.throws(() => parseMysqlGtidSet(`${uuidA}:5-2`), /not a valid interval/);
  assert.throws(() => parseMysqlGtidSet(`${uuidA}:0`), /not a valid interval/);
  assert.throws(() => parseMysqlGtidSet(uuidA), GtidParseError);
});
