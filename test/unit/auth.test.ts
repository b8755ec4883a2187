import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tokenMatches } from '../../src/api/auth.js';

test('tokens match only when identical', () => {
  assert.equal(tokenMatches('secret-token', 'secret-token'), true);
  assert.equal(tokenMatches('secret-tokeN', 'secret-token'), false);
  assert.equal(tokenMatches('secret', 'secret-token'), false);
  assert.equal(tokenMatches('', 'secret-token'), false);
});
