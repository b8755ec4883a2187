import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCi } from '../support/binaries.js';

test('any non-empty CI other than false or 0 is a CI run, where a missing binary or root fails', () => {
  for (const value of ['true', '1', 'yes', 'TRUE', 'on', 'github', '42'])
    assert.equal(isCi(value), true, value);
  for (const value of [undefined, '', ' ', 'false', 'FALSE', '0'])
    assert.equal(isCi(value), false, String(value));
});
