import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatPosition,
  mariadbGtid,
  mergePositions,
  mergePositionsKeepingFirst,
  parseBinlogState,
  parsePosition,
} from '../../src/mysql/gtid.js';

// One GTID module serves two kinds of caller: the rejoin/daemon merge must refuse a divergence,
// the engine must see it and go on deciding. These pin both behaviours on the same inputs.

test('the strict merge throws on divergence, the keeping-first merge keeps the first entry', () => {
  assert.throws(() => mergePositions('0-1-10,1-1-3', '0-2-10'), /diverged/);
  assert.equal(
    formatPosition(mergePositionsKeepingFirst('0-1-10,1-1-3', '0-2-10')),
    '0-1-10,1-1-3',
  );
  assert.equal(
    formatPosition(mergePositionsKeepingFirst('0-2-10', '0-1-10,1-1-3')),
    '0-2-10,1-1-3',
  );
  // Where nothing diverged, both agree.
  assert.equal(
    formatPosition(mergePositionsKeepingFirst('0-1-10', '0-3-12,2-2-1')),
    formatPosition(mergePositions('0-1-10', '0-3-12,2-2-1')),
  );
});

test('the engine view reports a divergence instead of throwing', () => {
  assert.equal(mariadbGtid.merge('0-1-10', '0-2-10'), '0-1-10');
  assert.equal(mariadbGtid.contains('0-1-10', '0-2-10'), false);
  assert.equal(mariadbGtid.contains('0-2-10', '0-1-10'), false);
  assert.deepEqual(mariadbGtid.missing('0-1-10', '0-2-10'), ['0-2-10']);
  assert.equal(mariadbGtid.missingCount('0-1-10', '0-2-10'), 1);
  // Divergence in one domain, plain lag in another: both named, counted together.
  assert.deepEqual(mariadbGtid.missing('0-1-10,1-1-2', '0-2-10,1-3-5'), ['0-2-10', '1-3-3..5']);
  assert.equal(mariadbGtid.missingCount('0-1-10,1-1-2', '0-2-10,1-3-5'), 4);
  // A domain the other side has never written in is missing from its start.
  assert.deepEqual(mariadbGtid.missing('', '4-1-2'), ['4-1-1..2']);
});

test('a binlog state keeps one GTID per domain and server, tolerating what a position refuses', () => {
  const text = '0-1-10,0-2-7, 0-1-12,junk,1-1-3';
  assert.throws(() => parsePosition(text));
  const state = parseBinlogState(text);
  assert.deepEqual(
    [...state].map(([key, gtid]) => `${key}:${gtid.seq}`),
    ['0-1:12', '0-2:7', '1-1:3'],
  );
  assert.equal(parseBinlogState(undefined).size, 0);
});
