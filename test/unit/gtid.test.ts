import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  contains,
  countTransactions,
  describeMissing,
  formatGtid,
  formatPosition,
  formatRange,
  GtidParseError,
  gtidsIn,
  isPositionText,
  mergePositions,
  missingFrom,
  parseGtid,
  parsePosition,
  parseRange,
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

test('contains', () => {
  assert.equal(contains('0-1-10,1-2-5', '0-1-9'), true);
  assert.equal(contains('0-1-9', '0-1-10'), false);
  assert.equal(contains('0-1-9', ''), true);
});

test('mergePositions takes the higher sequence per domain and refuses divergence', () => {
  assert.equal(
    formatPosition(mergePositions('0-1-10,1-1-3', '0-3-12', '2-2-1')),
    '0-3-12,1-1-3,2-2-1',
  );
  assert.equal(formatPosition(mergePositions('0-1-10', '0-1-10')), '0-1-10');
  assert.throws(() => mergePositions('0-1-10', '0-2-10'), /diverged/);
});

test('ranges, position lists and GTIDs inside other text are read by the same parser', () => {
  assert.deepEqual(parseRange('2-11-101..103'), { domain: 2, server: 11, from: 101n, to: 103n });
  assert.equal(formatRange(parseRange('0-1-100')), '0-1-100');
  assert.equal(formatRange({ domain: 0, server: 1, from: 98n, to: 100n }), '0-1-98..100');
  assert.throws(() => parseRange('0-1'), GtidParseError);
  assert.equal(countTransactions(['0-1-101..103', '0-2-7', 'nonsense']), 4);
  assert.equal(isPositionText('0-1-10'), true);
  assert.equal(isPositionText('0-1-10, 1-2-5'), true);
  for (const bad of ['', ' 0-1-10', '0-1-10,', '0-1', 'a-b-c', '0-1-10\n'])
    assert.equal(isPositionText(bad), false, JSON.stringify(bad));
  assert.deepEqual(gtidsIn('BEGIN GTID 0-1-5 cid=3').map(formatGtid), ['0-1-5']);
  assert.deepEqual(gtidsIn('[0-1-4,1-2-3]').map(formatGtid), ['0-1-4', '1-2-3']);
  assert.deepEqual(gtidsIn('#1 GTID 0-1-5 trans\nSET @@gtid 0-1-6', 'GTID ').map(formatGtid), [
    '0-1-5',
  ]);
});
