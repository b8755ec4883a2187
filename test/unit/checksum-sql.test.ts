import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  afterBoundary,
  chunkChecksumSql,
  chunkWhere,
  masterResultSql,
  nextBoundarySql,
  nextChunkSize,
  upToBoundary,
} from '../../src/checksum/sql.js';
import { chooseKey, matchesFilter } from '../../src/checksum/tables.js';

test('composite boundaries expand into range-scan friendly OR chains', () => {
  assert.equal(afterBoundary(['a'], [5]), '`a` > 5');
  assert.equal(afterBoundary(['a', 'b'], [1, 'x']), "(`a` > 1 OR (`a` = 1 AND `b` > 'x'))");
  assert.equal(upToBoundary(['a', 'b'], [1, 'x']), "(`a` < 1 OR (`a` = 1 AND `b` <= 'x'))");
  assert.equal(chunkWhere(['id'], undefined, undefined), '1=1');
  assert.equal(chunkWhere(['id'], [10], [20]), '`id` > 10 AND `id` <= 20');
  assert.equal(chunkWhere(['id'], undefined, [20]), '`id` <= 20');
});

test('the chunk statement carries literal values only and NULL-aware row checksums', () => {
  const sql = chunkChecksumSql('switchyard', {
    db: "o'db",
    table: 'items',
    chunk: 3,
    key: { index: 'PRIMARY', columns: ['id'] },
    columns: [
      { name: 'id', nullable: false },
      { name: 'note', nullable: true },
    ],
    lower: [100],
    upper: [200],
  });
  assert.match(sql, /^REPLACE INTO `switchyard`\.`checksums` /);
  assert.match(sql, /SELECT 'o\\'db', 'items', 3, 'PRIMARY', '100', '200', /);
  assert.match(sql, /CRC32\(CONCAT_WS\('#', `id`, `note`, CONCAT\(ISNULL\(`note`\)\)\)\)/);
  assert.match(
    sql,
    /FROM `o'db`\.`items` FORCE INDEX\(PRIMARY\) WHERE `id` > 100 AND `id` <= 200$/,
  );
  assert.doesNotMatch(sql, /\?/);
  assert.equal(
    masterResultSql('switchyard', 'app', 't', 2, 'abc', 7, 0.1234567),
    "UPDATE `switchyard`.`checksums` SET chunk_time = 0.123457, master_crc = 'abc', master_cnt = 7 WHERE db = 'app' AND tbl = 't' AND chunk = 2",
  );
  assert.equal(
    nextBoundarySql('app', 't', { index: 'uk', columns: ['a', 'b'] }, undefined, 500),
    'SELECT `a`, `b` FROM `app`.`t` FORCE INDEX(`uk`) ORDER BY `a`, `b` LIMIT 1 OFFSET 499',
  );
});

test('adaptive chunk size follows the target time within bounds', () => {
  assert.equal(nextChunkSize(1000, 1000, 0.05, 0.5), 4000); // 10x faster than target, capped at 4x per step
  assert.equal(nextChunkSize(1000, 1000, 5, 0.5), 325); // 10x slower: smoothed towards 100
  assert.equal(nextChunkSize(1000, 1000, 500, 0.5), 251); // far slower: smoothing keeps it above 250
  assert.equal(nextChunkSize(1000, 1000, 0.5, 0.5), 1000);
  assert.equal(nextChunkSize(90_000, 90_000, 0.01, 0.5), 100_000);
  assert.equal(nextChunkSize(12, 12, 100, 0.5), 10); // never below the minimum
});

test('key choice: PRIMARY, else the first unique all-NOT-NULL index; filters', () => {
  const row = (index: string, column: string, seq = 1, nonUnique = false, nullable = false) => ({
    index,
    column,
    seq,
    nonUnique,
    nullable,
  });
  assert.deepEqual(chooseKey([row('PRIMARY', 'b', 2), row('PRIMARY', 'a', 1), row('u', 'c')]), {
    index: 'PRIMARY',
    columns: ['a', 'b'],
  });
  assert.deepEqual(
    chooseKey([row('k', 'x', 1, true), row('u1', 'n', 1, false, true), row('u2', 'm')]),
    { index: 'u2', columns: ['m'] },
  );
  assert.equal(chooseKey([row('k', 'x', 1, true)]), undefined);
  assert.equal(chooseKey([]), undefined);
  assert.ok(matchesFilter('app', 't', undefined));
  assert.ok(matchesFilter('app', 't', ['app.*']));
  assert.ok(matchesFilter('app', 't', ['app']));
  assert.ok(!matchesFilter('app', 't', ['app.u', 'other.t']));
});
