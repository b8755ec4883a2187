/**
 * A cluster whose roles have no `ips` (routed by health checks or hooks): failover and switchover
 * run with no VIP to move, the exchange tells each agent its roles, and the metrics and status
 * show the roles.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildStatus } from '../../src/api/status-routes.js';
import type { LoadedConfig } from '../../src/config/load.js';
import { holderOf, rolesHeldBy } from '../../src/engine/roles.js';
import { harness, testConfig } from './engine-fakes.js';

const config = () =>
  testConfig({
    roles: {
      writer: { exclusive: true, hosts: ['db1', 'db2'], prefer: 'db1' },
      reader: { hosts: ['db1', 'db2', 'db3'] },
    },
  });
const healthy = { db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' } as const;
const down = { db1: 'HARD_OFFLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' } as const;

test('no ips: kill of the writer fails over with no VIP to move; roles are reported', async () => {
  const h = harness({ config: config() });
  await h.cycle(healthy);
  const before = h.engine.snapshot();
  assert.equal(holderOf(before.roles, 'writer'), 'db1');
  assert.deepEqual(rolesHeldBy('db1', config().roles, before, 'writer'), ['writer', 'reader']);
  assert.deepEqual(rolesHeldBy('db3', config().roles, before, 'writer'), ['reader']);

  h.sim.killHost('db1');
  let state = await h.cycle(down);
  assert.equal(holderOf(state.roles, 'writer'), 'db2');
  assert.deepEqual(h.sim.writable(), ['db2']);
  assert.deepEqual(h.sim.violations, []);
  assert.deepEqual(
    h.sim.calls.filter((call) => /Vip/.test(call)),
    [],
    'no VIP was touched',
  );
  assert.ok(h.events().includes('note:failover.done:db2'));
  // The survivors back to ONLINE (replicating from the new writer); the dead host stays down.
  await h.cycle({ db1: 'HARD_OFFLINE', db2: 'ONLINE', db3: 'ONLINE' });
  state = h.engine.snapshot();
  // The dead host holds no role; db2 holds both.
  assert.deepEqual(rolesHeldBy('db1', config().roles, state, 'writer'), []);
  assert.deepEqual(rolesHeldBy('db2', config().roles, state, 'writer'), ['writer', 'reader']);
  const metrics = (await h.metrics.render()).body;
  assert.match(metrics, /switchyard_role_assigned\{role="writer",host="db2",cluster="test"\} 1/);
  assert.match(metrics, /switchyard_role_assigned\{role="reader",host="db3",cluster="test"\} 1/);
  assert.doesNotMatch(metrics, /switchyard_role_assigned\{[^}]*host="db1"/);

  const status = buildStatus(config() as unknown as LoadedConfig, undefined, state, {
    leader: 'leader',
    alertingPipelineUp: true,
  });
  assert.deepEqual(status.roles.writer, { '-': 'db2' });
  assert.deepEqual(status.hosts.find((host) => host.name === 'db2')?.roles, [
    { role: 'writer', ip: '-' },
    { role: 'reader', ip: '-' },
  ]);
  assert.deepEqual(status.hosts.find((host) => host.name === 'db1')?.roles, []);
});

test('no ips: move-role switches the writer over with no VIP steps', async () => {
  const h = harness({ config: config() });
  await h.cycle(healthy);
  const result = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(result.ok, true, result.detail);
  assert.deepEqual(
    h.sim.calls.filter((call) => !call.startsWith('repoint')),
    ['fence:db1', `waitForGtid:db2:${h.sim.host('db1').applied}`, 'setReadOnly:db2:false'],
  );
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db2');
});
