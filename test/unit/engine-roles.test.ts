import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RoleConfig } from '../../src/config/schema.js';
import type { HostRecord } from '../../src/domain/cluster-state.js';
import type { HostState } from '../../src/domain/host-state.js';
import { assignRoles, holderOf } from '../../src/engine/roles.js';
import { record } from './engine-fakes.js';

const reader: RoleConfig = {
  exclusive: false,
  hosts: ['db1', 'db2', 'db3'],
  ips: ['ip1', 'ip2', 'ip3', 'ip4', 'ip5', 'ip6'],
};
const writer: RoleConfig = { exclusive: true, hosts: ['db1', 'db2'], ips: ['vip'], prefer: 'db1' };

function hosts(states: Record<string, HostState>): Record<string, HostRecord> {
  return Object.fromEntries(Object.entries(states).map(([name, state]) => [name, record(state)]));
}

function counts(assignment: Record<string, string | null>): Record<string, number> {
  const result: Record<string, number> = {};
  for (const host of Object.values(assignment)) if (host) result[host] = (result[host] ?? 0) + 1;
  return result;
}

test('balanced role: IPs spread evenly over ONLINE hosts from nothing', () => {
  const result = assignRoles({
    roles: { reader },
    hosts: hosts({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' }),
    current: {},
    writerRole: 'writer',
  });
  assert.deepEqual(counts(result.roles.reader ?? {}), { db1: 2, db2: 2, db3: 2 });
  assert.equal(result.moves.length, 6);
  assert.deepEqual(result.unassigned, []);
});

test('balanced role: a stable assignment produces no moves', () => {
  const current = {
    reader: { ip1: 'db3', ip2: 'db1', ip3: 'db2', ip4: 'db3', ip5: 'db1', ip6: 'db2' },
  };
  const result = assignRoles({
    roles: { reader },
    hosts: hosts({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' }),
    current,
    writerRole: 'writer',
  });
  assert.deepEqual(result.moves, []);
  assert.deepEqual(result.roles.reader, current.reader);
});

test('balanced role: a host that goes away gives its IPs to the others, evenly', () => {
  const current = {
    reader: { ip1: 'db1', ip2: 'db1', ip3: 'db2', ip4: 'db2', ip5: 'db3', ip6: 'db3' },
  };
  const result = assignRoles({
    roles: { reader },
    hosts: hosts({ db1: 'ONLINE', db2: 'ONLINE', db3: 'HARD_OFFLINE' }),
    current,
    writerRole: 'writer',
  });
  assert.deepEqual(counts(result.roles.reader ?? {}), { db1: 3, db2: 3 });
  assert.deepEqual(result.moves.map((move) => [move.ip, move.from]).sort(), [
    ['ip5', 'db3'],
    ['ip6', 'db3'],
  ]);
});

test('balanced role: a returning host takes back only what evens things out (minimal moves)', () => {
  const current = {
    reader: { ip1: 'db1', ip2: 'db1', ip3: 'db1', ip4: 'db2', ip5: 'db2', ip6: 'db2' },
  };
  const result = assignRoles({
    roles: { reader },
    hosts: hosts({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' }),
    current,
    writerRole: 'writer',
  });
  assert.deepEqual(counts(result.roles.reader ?? {}), { db1: 2, db2: 2, db3: 2 });
  assert.equal(result.moves.length, 2, JSON.stringify(result.moves));
  for (const move of result.moves) assert.equal(move.to, 'db3');
});

test('balanced role: uneven counts differ by at most one and are not shuffled', () => {
  const five: RoleConfig = { ...reader, ips: ['ip1', 'ip2', 'ip3', 'ip4', 'ip5'] };
  const current = { reader: { ip1: 'db1', ip2: 'db1', ip3: 'db2', ip4: 'db2', ip5: 'db3' } };
  const result = assignRoles({
    roles: { reader: five },
    hosts: hosts({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' }),
    current,
    writerRole: 'writer',
  });
  assert.deepEqual(result.moves, []);
});

test('REPLICATION_DELAY / REPLICATION_FAIL keep the writer role but lose the others', () => {
  const current = {
    writer: { vip: 'db1' },
    reader: { ip1: 'db1', ip2: 'db2', ip3: 'db3', ip4: 'db1', ip5: 'db2', ip6: 'db3' },
  };
  for (const state of ['REPLICATION_DELAY', 'REPLICATION_FAIL'] as const) {
    const result = assignRoles({
      roles: { writer, reader },
      hosts: hosts({ db1: state, db2: 'ONLINE', db3: 'ONLINE' }),
      current,
      writerRole: 'writer',
    });
    assert.equal(holderOf(result.roles, 'writer'), 'db1', state);
    assert.equal(counts(result.roles.reader ?? {}).db1, undefined, state);
    assert.deepEqual(counts(result.roles.reader ?? {}), { db2: 3, db3: 3 });
  }
});

test('exclusive role: the prefer host gets it back once ONLINE, not before', () => {
  const current = { writer: { vip: 'db2' } };
  const away = assignRoles({
    roles: { writer },
    hosts: hosts({ db1: 'AWAITING_RECOVERY', db2: 'ONLINE' }),
    current,
    writerRole: 'writer',
  });
  assert.equal(holderOf(away.roles, 'writer'), 'db2');
  assert.deepEqual(away.moves, []);
  const back = assignRoles({
    roles: { writer },
    hosts: hosts({ db1: 'ONLINE', db2: 'ONLINE' }),
    current,
    writerRole: 'writer',
  });
  assert.equal(holderOf(back.roles, 'writer'), 'db1');
  assert.equal(back.moves.length, 1);
  assert.match(back.moves[0]?.reason ?? '', /preferred/);
  const pinned = assignRoles({
    roles: { writer },
    hosts: hosts({ db1: 'ONLINE', db2: 'ONLINE' }),
    current,
    writerRole: 'writer',
    pinned: new Map([['writer', 'db2']]),
  });
  assert.equal(holderOf(pinned.roles, 'writer'), 'db2', 'an operator move is not undone by prefer');
});

test('exclusive role: holder that loses eligibility gives way to the next eligible host', () => {
  const result = assignRoles({
    roles: { writer },
    hosts: hosts({ db1: 'ADMIN_OFFLINE', db2: 'ONLINE' }),
    current: { writer: { vip: 'db1' } },
    writerRole: 'writer',
  });
  assert.equal(holderOf(result.roles, 'writer'), 'db2');
});

test('no eligible host: the IPs are unassigned and the reason names every host', () => {
  const result = assignRoles({
    roles: { reader },
    hosts: {
      db1: record('HARD_OFFLINE'),
      db2: record('REPLICATION_DELAY'),
      db3: record('ONLINE', { held: 'flapping' }),
    },
    current: { reader: { ip1: 'db1' } },
    writerRole: 'writer',
  });
  assert.ok(Object.values(result.roles.reader ?? {}).every((host) => host === null));
  assert.equal(result.unassigned.length, 6);
  assert.match(
    result.unassigned[0]?.reason ?? '',
    /no eligible host for role reader.*db1 is HARD_OFFLINE.*db2 is REPLICATION_DELAY.*db3 is held/,
  );
});

test('alert-dropped roles make a host ineligible for those roles only', () => {
  const result = assignRoles({
    roles: { writer, reader },
    hosts: hosts({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' }),
    current: { writer: { vip: 'db1' } },
    writerRole: 'writer',
    dropped: new Map([['db3', new Set(['reader'])]]),
  });
  assert.equal(counts(result.roles.reader ?? {}).db3, undefined);
  assert.equal(holderOf(result.roles, 'writer'), 'db1');
});

test('an exclusive role without IPs still records its holder', () => {
  const noIp: RoleConfig = { exclusive: true, hosts: ['db1', 'db2'], ips: [] };
  const result = assignRoles({
    roles: { writer: noIp },
    hosts: hosts({ db1: 'ONLINE', db2: 'ONLINE' }),
    current: {},
    writerRole: 'writer',
  });
  assert.equal(holderOf(result.roles, 'writer'), 'db1');
});
