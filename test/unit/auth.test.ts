import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tokenMatches } from '../../src/api/auth.js';
import { authenticate, grants, scopeFor, tokenSpecs } from '../../src/api/scopes.js';

test('tokens match only when identical', () => {
  assert.equal(tokenMatches('secret-token', 'secret-token'), true);
  assert.equal(tokenMatches('secret-tokeN', 'secret-token'), false);
  assert.equal(tokenMatches('secret', 'secret-token'), false);
  assert.equal(tokenMatches('', 'secret-token'), false);
});

test('each endpoint needs its scope; anything unlisted needs admin', () => {
  assert.equal(scopeFor('POST', '/alerts'), 'alerts');
  assert.equal(scopeFor('GET', '/status'), 'read');
  assert.equal(scopeFor('GET', '/checks'), 'read');
  assert.equal(scopeFor('GET', '/journal'), 'read');
  assert.equal(scopeFor('POST', '/hosts/db1/online'), 'operate');
  assert.equal(scopeFor('POST', '/hosts/db1/offline'), 'operate');
  assert.equal(scopeFor('POST', '/roles/writer/move'), 'operate');
  assert.equal(scopeFor('PUT', '/mode'), 'operate');
  assert.equal(scopeFor('GET', '/alerts'), 'admin');
  assert.equal(scopeFor('POST', '/clone'), 'admin');
  assert.equal(scopeFor('POST', '/hosts/db1/rejoin'), 'admin');
  // Transfer jobs are for watching (read); starting one (clone, backup, restore) needs admin.
  assert.equal(scopeFor('GET', '/transfers'), 'read');
  assert.equal(scopeFor('GET', '/transfers/0b9c-4f'), 'read');
  assert.equal(scopeFor('GET', '/transfers/0b9c-4f/extra'), 'admin');
  assert.equal(scopeFor('POST', '/transfers'), 'admin');
  assert.equal(scopeFor('POST', '/backups'), 'admin');
  // The backup catalogue is for watching; deleting is the agents' business, not the API's.
  assert.equal(scopeFor('GET', '/backups'), 'read');
  assert.equal(scopeFor('GET', '/backups/db2/x'), 'admin');
  assert.equal(scopeFor('DELETE', '/backups'), 'admin');
  assert.equal(scopeFor('POST', '/restores'), 'admin');
});

test('operate includes read, admin includes everything, alerts is only alerts', () => {
  assert.equal(grants(['operate'], 'read'), true);
  assert.equal(grants(['operate'], 'alerts'), false);
  assert.equal(grants(['operate'], 'admin'), false);
  assert.equal(grants(['alerts'], 'read'), false);
  assert.equal(grants(['alerts'], 'operate'), false);
  assert.equal(grants(['read'], 'operate'), false);
  for (const scope of ['read', 'alerts', 'operate', 'admin'] as const)
    assert.equal(grants(['admin'], scope), true);
});

test('auth.token_file is one admin token named "admin"; a presented token finds its own name', () => {
  process.env.SWITCHYARD_UNIT_A = 'token-a';
  process.env.SWITCHYARD_UNIT_B = 'token-b';
  const specs = tokenSpecs({
    token_env: 'SWITCHYARD_UNIT_A',
    tokens: [{ name: 'am', env: 'SWITCHYARD_UNIT_B', scopes: ['alerts'] }],
  });
  assert.deepEqual(
    specs.map((spec) => [spec.name, spec.scopes]),
    [
      ['admin', ['admin']],
      ['am', ['alerts']],
    ],
  );
  assert.deepEqual(authenticate('token-b', specs).principal, { name: 'am', scopes: ['alerts'] });
  assert.deepEqual(authenticate('token-a', specs).principal, { name: 'admin', scopes: ['admin'] });
  assert.equal(authenticate('token-c', specs).principal, undefined);
});
