import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { LoadedConfig } from '../../src/config/load.js';
import type { ClusterState } from '../../src/domain/cluster-state.js';
import { silentLogger } from '../../src/log.js';
import { Monitor, type Observed } from '../../src/monitor/monitor.js';
import { nextHostRecord } from '../../src/monitor/state-machine.js';
import { clusterState, harness, testConfig } from './engine-fakes.js';

// Seen under repeated faults: db1 restarted, was set online, and was killed again a second later.
// The monitor's newer uptime and connection id were dropped in favour of the engine's record (the
// set-online was newer than the monitor's last transition), so the second restart compared against
// the first restart's figures and went unnoticed: db1 came back ONLINE instead of held.
test('an operator change keeps its state, but what the monitor last saw of the server is kept too', async () => {
  const h = harness();
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  const withHost = (change: Partial<ClusterState['hosts'][string]>): ClusterState => {
    const current = h.engine.snapshot();
    return {
      ...current,
      hosts: { ...current.hosts, db3: { ...current.hosts.db3!, ...change } },
    };
  };
  const restartedAt = Date.now() - 1000;
  await h.engine.onCycle(
    h.sim.observe(),
    withHost({
      state: 'AWAITING_RECOVERY',
      held: 'restarted',
      since: restartedAt,
      lastUptimeSeconds: 0,
      lastConnectionId: 7,
    }),
  );
  const online = await h.engine.setOnline('db3');
  assert.equal(online.ok, true, online.detail);

  // The monitor's next cycle started from the state before the set-online: no transition, newer figures.
  await h.engine.onCycle(
    h.sim.observe(),
    withHost({
      state: 'AWAITING_RECOVERY',
      held: 'restarted',
      since: restartedAt,
      lastUptimeSeconds: 1,
      lastConnectionId: 15,
    }),
  );
  const db3 = h.engine.snapshot().hosts.db3!;
  assert.equal(db3.state, 'ONLINE', "the operator's set-online stands");
  assert.equal(db3.held, undefined);
  assert.equal(db3.lastUptimeSeconds, 1, 'the uptime the monitor saw last');
  assert.equal(db3.lastConnectionId, 15, 'the connection id the monitor saw last');
});

// A cycle's checks take up to check_timeout; an operator command may land meanwhile. The monitor
// used to run its state machine on the copy the checks started from, and a transition computed
// from that copy (its `since` is newer) replaced the command's record. The daemon now hands the
// state machine to onCycle, which runs it on the engine's current record under the lock.
test("a monitor transition in the cycle during which the operator set a host offline is built on the operator's record", async () => {
  const h = harness();
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  const monitor = testConfig().monitor;
  const lagging = h.sim
    .observe()
    .map((obs) => (obs.host === 'db3' ? { ...obs, heartbeatLagSeconds: 3600 } : obs));
  const advance = (state: ClusterState): ClusterState => ({
    ...state,
    hosts: Object.fromEntries(
      Object.entries(state.hosts).map(([host, record]) => [
        host,
        nextHostRecord(
          record,
          lagging.find((obs) => obs.host === host)!,
          {
            isActiveWriter: host === 'db1',
            monitor,
            now: Date.now() + 1000,
          },
        ).record,
      ]),
    ),
  });
  // What the old monitor would have handed in: db3 ONLINE -> REPLICATION_DELAY, from the copy
  // taken before the command.
  const stale = advance(h.engine.snapshot());
  assert.equal(stale.hosts.db3?.state, 'REPLICATION_DELAY');

  const offline = await h.engine.setOffline('db3');
  assert.equal(offline.ok, true, offline.detail);
  await h.engine.onCycle(lagging, advance);
  const db3 = h.engine.snapshot().hosts.db3!;
  assert.equal(db3.state, 'ADMIN_OFFLINE', "the operator's set-offline stands");
  assert.equal(db3.reason, 'set offline by the operator');
});

// Seen in CI (rejoin.test.ts): `rejoin db3` repointed a restarted replica and set it online while a
// cycle's checks were under way. Those checks had seen db3's replication stopped (before the
// repoint), and the state machine, now run on the engine's current record, took the fresh ONLINE
// record to REPLICATION_FAIL from them. An observation that predates the record's last change
// must not move it.
test('checks that began before a set-online do not move the host it set online; the next checks do', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-merge-'));
  const passwordFile = join(dir, 'pass');
  writeFileSync(passwordFile, 'secret\n');
  // testConfig parses the whole schema; only the engine's part is in its type.
  const base = testConfig() as LoadedConfig;
  const config: LoadedConfig = {
    ...base,
    mysql: { ...base.mysql, password_file: passwordFile },
    source: join(dir, 'c.yaml'),
  };
  const monitor = new Monitor({
    config,
    log: silentLogger,
    pinger: async () => true,
  });
  try {
    const h = harness({
      state: clusterState({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' }),
    });
    await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
    assert.equal((await h.engine.setOffline('db3')).ok, true);
    const db3 = h.sim.host('db3');
    db3.ioRunning = false;
    db3.sqlRunning = false;
    const network = { ok: true, detail: 'test' };
    const before: Observed = { at: Date.now(), observations: h.sim.observe(), network };
    await new Promise((resolve) => setTimeout(resolve, 5));

    // The operator's command lands while those checks run.
    db3.ioRunning = true;
    db3.sqlRunning = true;
    const online = await h.engine.setOnline('db3');
    assert.equal(online.ok, true, online.detail);
    await h.engine.onCycle(before.observations, (state) => monitor.advance(state, before).state);
    assert.equal(h.engine.snapshot().hosts.db3?.state, 'ONLINE', 'the stale checks left it alone');

    // Checks begun after the command are applied as ever.
    db3.ioRunning = false;
    await new Promise((resolve) => setTimeout(resolve, 5));
    const after: Observed = { at: Date.now(), observations: h.sim.observe(), network };
    await h.engine.onCycle(after.observations, (state) => monitor.advance(state, after).state);
    assert.equal(h.engine.snapshot().hosts.db3?.state, 'REPLICATION_FAIL');
  } finally {
    await monitor.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
