import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasIntegerKey, nextSpan, TAPER_MIN_ROWS } from '../../src/checksum/chunker.js';
import { literal } from '../../src/checksum/sql.js';

test('integer-key chunks: one integer key column only', () => {
  const plan = (type: string, columns = ['id']) => ({
    db: 'app',
    table: 't',
    columns: [
      { name: 'id', nullable: false, type },
      { name: 'b', nullable: false, type: 'int' },
    ],
    key: { index: 'PRIMARY', columns },
  });
  assert.equal(hasIntegerKey(plan('bigint')), true);
  assert.equal(hasIntegerKey(plan('int')), true);
  assert.equal(hasIntegerKey(plan('varchar')), false);
  assert.equal(hasIntegerKey(plan('decimal')), false);
  assert.equal(hasIntegerKey(plan('int', ['id', 'b'])), false);
  assert.equal(
    hasIntegerKey({ db: 'app', table: 't', columns: [{ name: 'id', nullable: false }] }),
    false,
  );
});

test('key spans follow the density and taper towards the end of the key range', () => {
  // Far from the end: size rows at the density seen.
  assert.equal(nextSpan({ size: 100_000, keysPerRow: 1, remaining: 10_000_000n }), 100_000n);
  assert.equal(nextSpan({ size: 1000, keysPerRow: 3, remaining: 10_000_000n }), 3000n);
  // Near it: half of what remains, never below TAPER_MIN_ROWS rows' worth of keys.
  assert.equal(nextSpan({ size: 100_000, keysPerRow: 1, remaining: 120_000n }), 60_000n);
  assert.equal(
    nextSpan({ size: 100_000, keysPerRow: 1, remaining: 6000n }),
    BigInt(TAPER_MIN_ROWS),
  );
  // A chunk smaller than the floor is not grown by it.
  assert.equal(nextSpan({ size: 1000, keysPerRow: 1, remaining: 1500n }), 1000n);
  assert.equal(nextSpan({ size: 1, keysPerRow: 0.001, remaining: 1n }), 1n);
});

test('whole-number boundaries are exact, unquoted digits, BIGINT UNSIGNED included', () => {
  assert.equal(literal(18446744073709551615n), '18446744073709551615');
  assert.equal(literal(-5n), '-5');
  assert.equal(literal('5'), "'5'");
});
