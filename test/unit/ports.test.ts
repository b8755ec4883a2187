import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ephemeralPortLow, findFreePortRange, portWindow } from '../../src/sandbox/ports.js';

test('port ranges are picked below the kernel ephemeral range, where a later listener cannot lose its port to an outgoing connection', async () => {
  assert.deepEqual(portWindow(20_000, 40_000, 32_768), { low: 20_000, high: 32_768 });
  // A range already below it, or an ephemeral range too low to leave room, is kept as given.
  assert.deepEqual(portWindow(20_000, 30_000, 32_768), { low: 20_000, high: 30_000 });
  assert.deepEqual(portWindow(20_000, 40_000, 21_000), { low: 20_000, high: 40_000 });
  assert.deepEqual(portWindow(20_000, 40_000, undefined), { low: 20_000, high: 40_000 });
  assert.equal(
    ephemeralPortLow(() => '32768\t60999\n'),
    32_768,
  );
  assert.equal(
    ephemeralPortLow(() => 'garbage'),
    undefined,
  );
  assert.equal(
    ephemeralPortLow(() => {
      throw new Error('no /proc');
    }),
    undefined,
  );
  const low = ephemeralPortLow();
  for (let round = 0; round < 20; round++) {
    const base = await findFreePortRange(4);
    assert.ok(base >= 20_000);
    if (low !== undefined) assert.ok(base + 4 <= low, `${base}..${base + 3} reaches ${low}`);
  }
});
