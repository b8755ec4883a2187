import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, parseDuration } from '../../src/config/duration.js';

test('durations parse with units', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1s'), 1000);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('0.5s'), 500);
  assert.equal(parseDuration('0'), 0);
});

test('durations without a unit or with garbage are rejected', () => {
  for (const bad of ['10', '', 's', '1x', '1s junk', '-1s', '1 s']) {
    assert.throws(() => parseDuration(bad), /not a duration/, bad);
  }
});

test('formatDuration round-trips', () => {
  for (const ms of [0, 500, 1000, 120_000, 3_600_000])
    assert.equal(parseDuration(formatDuration(ms)), ms);
});
