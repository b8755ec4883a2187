import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostRecord } from '../../src/domain/cluster-state.js';
import { assignRoles } from '../../src/engine/roles.js';

const record = (failures = 0): HostRecord => ({
  state: 'ONLINE',
  reason: 'test',
  since: 0,
  failures,
  flaps: [],
});

test('a host that failed its last check keeps its IPs but receives no new ones', () => {
  const result = assignRoles({
    roles: {
      reader: {
        exclusive: false,
        hosts: ['db1', 'db2', 'db3'],
        ips: ['10.0.0.101', '10.0.0.102', '10.0.0.103'],
      },
    },
    hosts: { db1: record(1), db2: { ...record(), state: 'REPLICATION_FAIL' }, db3: record() },
    current: { reader: { '10.0.0.101': 'db1', '10.0.0.102': 'db2', '10.0.0.103': 'db3' } },
    writerRole: 'writer',
  } as Parameters<typeof assignRoles>[0]);
  assert.equal(
    result.roles.reader?.['10.0.0.101'],
    'db1',
    'db1 keeps its IP while it is only suspect',
  );
  assert.equal(
    result.roles.reader?.['10.0.0.102'],
    'db3',
    "db2's IP goes to the healthy db3, not to the suspect db1",
  );
});
