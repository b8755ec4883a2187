import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QUICK_RECHECK_DELAYS_MS, QuickRechecks } from '../../src/monitor/quick-rechecks.js';

test('after the writer connection breaks, the first look comes within 10 ms and the spacing doubles', () => {
  const looks = new QuickRechecks();
  assert.equal(looks.nextWait(1000), 1000, 'unarmed: the interval applies');
  looks.arm();
  const waits = QUICK_RECHECK_DELAYS_MS.map(() => looks.nextWait(1000));
  assert.ok((waits[0] ?? Infinity) <= 10, `first quick look after ${waits[0]} ms`);
  for (let index = 1; index < waits.length; index++)
    assert.equal(waits[index], 2 * (waits[index - 1] as number), `look ${index + 1}: ${waits}`);
  assert.ok(
    waits.reduce((sum, wait) => sum + wait, 0) >= 250,
    'the looks cover at least the 250 ms they covered before',
  );
  assert.equal(looks.armed, false);
  assert.equal(looks.nextWait(1000), 1000, 'after the last look the interval applies again');
});

test('quick looks never lengthen a wait, and stop when the writer answers again', () => {
  const looks = new QuickRechecks([10, 20, 40]);
  looks.arm();
  assert.equal(looks.nextWait(5), 5, 'a cycle due sooner is not delayed');
  assert.equal(looks.nextWait(1000), 20);
  looks.disarm();
  assert.equal(looks.armed, false);
  assert.equal(looks.nextWait(1000), 1000);
  looks.arm();
  assert.equal(looks.nextWait(1000), 10, 'a new break starts the looks over');
});
