import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostRecord } from '../../src/domain/cluster-state.js';
import { planCatchUp, type HostPosition } from '../../src/engine/candidates.js';
import { mariadbGtid } from '../../src/mysql/gtid.js';

const online = (): HostRecord => ({
  state: 'ONLINE',
  reason: 'test',
  since: 0,
  failures: 0,
  flaps: [],
});
const input = (hosts: Record<string, HostRecord>) => ({
  config: {
    roles: {
      writer: { exclusive: true, hosts: ['db1', 'db2'], ips: ['10.0.0.100'], prefer: 'db1' },
    },
    hosts: {},
  },
  writerRole: 'writer',
  state: {
    version: 1 as const,
    cluster: 'c',
    mode: 'active' as const,
    hosts,
    roles: {},
    updatedAt: 0,
  },
  observations: new Map(),
  gtid: mariadbGtid,
});
const position = (host: string, known: string): HostPosition => ({
  host,
  received: known,
  applied: known,
  known,
});

test('a replica ahead of the passive master: the candidate catches up from it', () => {
  const plan = planCatchUp(
    input({ db1: online(), db2: { ...online(), state: 'REPLICATION_FAIL' }, db3: online() }),
    ['db1'],
    [position('db2', '0-1-99'), position('db3', '0-1-100')],
  );
  assert.deepEqual(
    plan && { candidate: plan.candidate, donor: plan.donor, position: plan.position },
    { candidate: 'db2', donor: 'db3', position: '0-1-100' },
  );
  assert.match(plan?.reason ?? '', /db2 lacks .* that db3 has/);
});

test('no catch-up when the candidate has transactions the donor lacks (errant) or is not eligible', () => {
  assert.equal(
    planCatchUp(
      input({ db2: online(), db3: online() }),
      ['db1'],
      [position('db2', '0-1-99,1-2-5'), position('db3', '0-1-100')],
    ),
    undefined,
    'errant on the candidate: no host has everything',
  );
  assert.equal(
    planCatchUp(
      input({ db2: { ...online(), state: 'HARD_OFFLINE' }, db3: online() }),
      ['db1'],
      [position('db2', '0-1-99'), position('db3', '0-1-100')],
    ),
    undefined,
    'ineligible candidate',
  );
});
