import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostRecord } from '../../src/domain/cluster-state.js';
import { HOST_STATES, type HostState } from '../../src/domain/host-state.js';
import type { HostObservation, ReplicationStatus } from '../../src/domain/observation.js';
import {
  initialHostRecord,
  nextHostRecord,
  setOffline,
  setOnline,
  type StateContext,
} from '../../src/monitor/state-machine.js';

const monitor = {
  interval: 1000,
  connect_timeout: 1000,
  failures_before_down: 3,
  max_lag: 10_000,
  auto_set_online: 60_000,
  flap: { count: 3, window: 600_000 },
  ping_ips: [],
};
const NOW = 1_000_000_000;
const context = (over: Partial<StateContext> = {}): StateContext => ({
  isActiveWriter: false,
  monitor,
  now: NOW,
  ...over,
});

const healthyReplication: ReplicationStatus = {
  masterHost: '10.0.0.11',
  masterPort: 3306,
  ioRunning: true,
  sqlRunning: true,
  ioState: 'Waiting for master to send event',
  lastIoError: '',
  lastSqlError: '',
  secondsBehindMaster: 0,
  gtidIoPos: '0-1-10',
  relayBacklog: false,
};
const observe = (over: Partial<HostObservation> = {}): HostObservation => ({
  host: 'db2',
  at: NOW,
  reachable: true,
  readOnly: true,
  uptimeSeconds: 500,
  replication: healthyReplication,
  heartbeatLagSeconds: 0.2,
  checks: {},
  ...over,
});

/** Every outcome the monitor can report for a host. */
const OUTCOMES: Record<string, HostObservation> = {
  unreachable: observe({
    reachable: false,
    error: 'connect ECONNREFUSED',
    uptimeSeconds: undefined,
    replication: undefined,
  }),
  healthy: observe(),
  lagging: observe({ heartbeatLagSeconds: 12.5 }),
  ioStopped: observe({
    replication: {
      ...healthyReplication,
      ioRunning: false,
      ioState: 'Connecting',
      lastIoError: 'error reconnecting to master',
    },
  }),
  sqlStopped: observe({
    replication: { ...healthyReplication, sqlRunning: false },
    heartbeatLagSeconds: 30,
  }),
  sqlError: observe({
    replication: {
      ...healthyReplication,
      sqlRunning: false,
      lastSqlError: "Duplicate entry '1' for key 'PRIMARY'",
    },
  }),
  restarted: observe({ uptimeSeconds: 3 }),
};

const record = (state: HostState, over: Partial<HostRecord> = {}): HostRecord => ({
  state,
  reason: 'before',
  since: NOW - 1000,
  failures: 0,
  flaps: [],
  lastUptimeSeconds: 400,
  ...over,
});

/** Expected next state for every state x outcome (one failure, below failures_before_down). */
const EXPECTED: Record<HostState, Record<string, HostState>> = {
  ONLINE: {
    unreachable: 'ONLINE',
    healthy: 'ONLINE',
    lagging: 'REPLICATION_DELAY',
    ioStopped: 'REPLICATION_FAIL',
    sqlStopped: 'REPLICATION_DELAY',
    sqlError: 'REPLICATION_FAIL',
    restarted: 'AWAITING_RECOVERY',
  },
  ADMIN_OFFLINE: {
    unreachable: 'ADMIN_OFFLINE',
    healthy: 'ADMIN_OFFLINE',
    lagging: 'ADMIN_OFFLINE',
    ioStopped: 'ADMIN_OFFLINE',
    sqlStopped: 'ADMIN_OFFLINE',
    sqlError: 'ADMIN_OFFLINE',
    restarted: 'ADMIN_OFFLINE',
  },
  HARD_OFFLINE: {
    unreachable: 'HARD_OFFLINE',
    healthy: 'AWAITING_RECOVERY',
    lagging: 'AWAITING_RECOVERY',
    ioStopped: 'AWAITING_RECOVERY',
    sqlStopped: 'AWAITING_RECOVERY',
    sqlError: 'AWAITING_RECOVERY',
    restarted: 'AWAITING_RECOVERY',
  },
  AWAITING_RECOVERY: {
    unreachable: 'AWAITING_RECOVERY',
    healthy: 'AWAITING_RECOVERY',
    lagging: 'AWAITING_RECOVERY',
    ioStopped: 'AWAITING_RECOVERY',
    sqlStopped: 'AWAITING_RECOVERY',
    sqlError: 'AWAITING_RECOVERY',
    restarted: 'AWAITING_RECOVERY',
  },
  REPLICATION_DELAY: {
    unreachable: 'REPLICATION_DELAY',
    healthy: 'ONLINE',
    lagging: 'REPLICATION_DELAY',
    ioStopped: 'REPLICATION_FAIL',
    sqlStopped: 'REPLICATION_DELAY',
    sqlError: 'REPLICATION_FAIL',
    restarted: 'AWAITING_RECOVERY',
  },
  REPLICATION_FAIL: {
    unreachable: 'REPLICATION_FAIL',
    healthy: 'ONLINE',
    lagging: 'REPLICATION_DELAY',
    ioStopped: 'REPLICATION_FAIL',
    sqlStopped: 'REPLICATION_DELAY',
    sqlError: 'REPLICATION_FAIL',
    restarted: 'AWAITING_RECOVERY',
  },
};

for (const state of HOST_STATES) {
  for (const [outcome, observation] of Object.entries(OUTCOMES)) {
    test(`${state} + ${outcome} -> ${EXPECTED[state][outcome]}`, () => {
      const { record: next, transition } = nextHostRecord(record(state), observation, context());
      assert.equal(next.state, EXPECTED[state][outcome]);
      assert.equal(
        transition === undefined,
        next.state === state,
        'a transition is reported exactly when the state changes',
      );
      if (transition) assert.ok(transition.reason.length > 0, 'every transition has a reason');
    });
  }
}

test('HARD_OFFLINE only after failures_before_down consecutive failures, and a success resets the count', () => {
  let current = record('ONLINE');
  for (let index = 1; index <= 2; index++) {
    current = nextHostRecord(current, OUTCOMES.unreachable as HostObservation, context()).record;
    assert.equal(current.state, 'ONLINE', `after ${index} failure(s)`);
  }
  assert.equal(
    nextHostRecord(current, OUTCOMES.healthy as HostObservation, context()).record.failures,
    0,
  );
  const down = nextHostRecord(current, OUTCOMES.unreachable as HostObservation, context());
  assert.equal(down.record.state, 'HARD_OFFLINE');
  assert.equal(down.record.downSince, NOW);
  assert.match(
    down.transition?.reason ?? '',
    /unreachable for 3 consecutive checks: connect ECONNREFUSED/,
  );
});

test('a restart holds the host for the operator', () => {
  const { record: next } = nextHostRecord(
    record('ONLINE'),
    OUTCOMES.restarted as HostObservation,
    context(),
  );
  assert.equal(next.held, 'restarted');
  assert.match(next.reason, /uptime 400 s -> 3 s/);
  // Even a long wait does not bring it back automatically.
  const later = nextHostRecord(
    next,
    observe({ uptimeSeconds: 100 }),
    context({ now: NOW + 3_600_000 }),
  );
  assert.equal(later.record.state, 'AWAITING_RECOVERY');
});

test('the active writer is not held to its own replication', () => {
  for (const outcome of ['lagging', 'ioStopped', 'sqlStopped', 'sqlError']) {
    assert.equal(
      nextHostRecord(
        record('ONLINE'),
        OUTCOMES[outcome] as HostObservation,
        context({ isActiveWriter: true }),
      ).record.state,
      'ONLINE',
      outcome,
    );
  }
});

test('a fresh host goes straight to its health state; a fresh unreachable host goes HARD_OFFLINE', () => {
  assert.equal(
    nextHostRecord(initialHostRecord(NOW), OUTCOMES.healthy as HostObservation, context()).record
      .state,
    'ONLINE',
  );
  assert.equal(
    nextHostRecord(initialHostRecord(NOW), OUTCOMES.lagging as HostObservation, context()).record
      .state,
    'REPLICATION_DELAY',
  );
  let current = initialHostRecord(NOW);
  for (let index = 0; index < 3; index++)
    current = nextHostRecord(current, OUTCOMES.unreachable as HostObservation, context()).record;
  assert.equal(current.state, 'HARD_OFFLINE');
});

test('auto_set_online: only after a short outage, no restart, not held, and after waiting auto_set_online', () => {
  const back = nextHostRecord(
    record('HARD_OFFLINE', { downSince: NOW - 20_000 }),
    OUTCOMES.healthy as HostObservation,
    context(),
  ).record;
  assert.equal(back.state, 'AWAITING_RECOVERY');
  assert.equal(back.lastOutageMs, 20_000);
  assert.equal(
    nextHostRecord(back, OUTCOMES.healthy as HostObservation, context({ now: NOW + 59_000 })).record
      .state,
    'AWAITING_RECOVERY',
    'not before auto_set_online',
  );
  const online = nextHostRecord(
    back,
    OUTCOMES.healthy as HostObservation,
    context({ now: NOW + 60_000 }),
  );
  assert.equal(online.record.state, 'ONLINE');
  assert.match(online.transition?.reason ?? '', /auto_set_online/);

  const longOutage = nextHostRecord(
    record('HARD_OFFLINE', { downSince: NOW - 120_000 }),
    OUTCOMES.healthy as HostObservation,
    context(),
  ).record;
  assert.equal(
    nextHostRecord(longOutage, OUTCOMES.healthy as HostObservation, context({ now: NOW + 600_000 }))
      .record.state,
    'AWAITING_RECOVERY',
    'a long outage waits for the operator',
  );
  const never = { ...monitor, auto_set_online: 0 };
  assert.equal(
    nextHostRecord(
      back,
      OUTCOMES.healthy as HostObservation,
      context({ now: NOW + 600_000, monitor: never }),
    ).record.state,
    'AWAITING_RECOVERY',
    '0 = never',
  );
});

test('flapping: flap.count state losses within flap.window hold the host', () => {
  let current = record('ONLINE');
  let now = NOW;
  for (let loss = 1; loss <= 3; loss++) {
    now += 10_000;
    current = nextHostRecord(
      current,
      OUTCOMES.ioStopped as HostObservation,
      context({ now, master: { name: 'db1', online: true } }),
    ).record;
    if (loss < 3) {
      assert.equal(current.state, 'REPLICATION_FAIL');
      now += 10_000;
      current = nextHostRecord(
        current,
        OUTCOMES.healthy as HostObservation,
        context({ now }),
      ).record;
      assert.equal(current.state, 'ONLINE');
    }
  }
  assert.equal(current.state, 'AWAITING_RECOVERY');
  assert.match(current.held ?? '', /flapping: 3 state losses within 10m/);
  assert.equal(
    nextHostRecord(current, OUTCOMES.healthy as HostObservation, context({ now: now + 3_600_000 }))
      .record.state,
    'AWAITING_RECOVERY',
    'held until set-online',
  );
  assert.equal(setOnline(current, now).record.state, 'ONLINE');
  assert.equal(setOnline(current, now).record.held, undefined);
});

test('lag is not a flap: a host that lags and recovers again and again is never held', () => {
  let current = record('ONLINE');
  let now = NOW;
  for (let loss = 0; loss < 6; loss++) {
    now += 10_000;
    current = nextHostRecord(current, OUTCOMES.lagging as HostObservation, context({ now })).record;
    assert.equal(current.state, 'REPLICATION_DELAY');
    now += 10_000;
    current = nextHostRecord(current, OUTCOMES.healthy as HostObservation, context({ now })).record;
  }
  assert.equal(current.state, 'ONLINE');
  assert.deepEqual(current.flaps, []);
});

test('a replica whose master is not ONLINE stays ONLINE (MMM) and no flap is counted', () => {
  // Four writer deaths in a row within minutes: each breaks this replica's IO thread.
  let current = record('ONLINE');
  let now = NOW;
  for (let round = 0; round < 4; round++) {
    now += 30_000;
    const lost = nextHostRecord(
      current,
      OUTCOMES.ioStopped as HostObservation,
      context({ now, master: { name: 'db1', online: false } }),
    );
    assert.equal(lost.transition, undefined);
    assert.match(lost.record.reason, /master db1 is not ONLINE/);
    current = lost.record;
    now += 1000;
    current = nextHostRecord(
      current,
      OUTCOMES.healthy as HostObservation,
      context({ now, master: { name: 'db2', online: true } }),
    ).record;
  }
  assert.equal(current.state, 'ONLINE');
  assert.equal(current.held, undefined);
  assert.deepEqual(current.flaps, []);
});

test('an IO thread connecting without an error (just repointed) is not a replication failure', () => {
  const starting = observe({
    replication: {
      ...healthyReplication,
      ioRunning: false,
      ioState: 'Connecting',
      lastIoError: '',
    },
  });
  const next = nextHostRecord(
    record('ONLINE'),
    starting,
    context({ master: { name: 'db2', online: true } }),
  );
  assert.equal(next.record.state, 'ONLINE');
  assert.deepEqual(next.record.flaps, []);
});

test('set-online clears the flap history: the next single blip does not hold the host again', () => {
  let current = record('ONLINE', { flaps: [NOW - 3000, NOW - 2000] });
  current = nextHostRecord(
    current,
    OUTCOMES.ioStopped as HostObservation,
    context({ master: { name: 'db1', online: true } }),
  ).record;
  assert.match(current.held ?? '', /flapping: 3/);
  current = setOnline(current, NOW + 1000).record;
  assert.deepEqual(current.flaps, []);
  current = nextHostRecord(
    current,
    OUTCOMES.ioStopped as HostObservation,
    context({ now: NOW + 2000, master: { name: 'db1', online: true } }),
  ).record;
  assert.equal(current.state, 'REPLICATION_FAIL');
  assert.equal(current.held, undefined);
});

test('losses outside the flap window do not count', () => {
  let current = record('ONLINE');
  let now = NOW;
  for (let loss = 0; loss < 5; loss++) {
    now += 400_000;
    current = nextHostRecord(
      current,
      OUTCOMES.ioStopped as HostObservation,
      context({ now, master: { name: 'db1', online: true } }),
    ).record;
    now += 1000;
    current = nextHostRecord(current, OUTCOMES.healthy as HostObservation, context({ now })).record;
  }
  assert.equal(current.state, 'ONLINE');
  assert.equal(current.held, undefined);
});

test('ADMIN_OFFLINE is left only through set-online; set-offline reports its transition', () => {
  const offline = setOffline(record('ONLINE'), NOW);
  assert.equal(offline.record.state, 'ADMIN_OFFLINE');
  assert.deepEqual(offline.transition, {
    from: 'ONLINE',
    to: 'ADMIN_OFFLINE',
    reason: 'set offline by the operator',
  });
  assert.equal(setOffline(offline.record, NOW).transition, undefined, 'repeating is a no-op');
});

test('a young server restarted within seconds shows the same uptime, but its connection ids started again: restarted', () => {
  let current = record('ONLINE', { lastUptimeSeconds: undefined });
  current = nextHostRecord(
    current,
    observe({ uptimeSeconds: 1, connectionId: 40 }),
    context(),
  ).record;
  assert.equal(current.state, 'ONLINE');
  const next = nextHostRecord(
    current,
    observe({ uptimeSeconds: 1, connectionId: 6 }),
    context({ now: NOW + 3000 }),
  );
  assert.equal(next.record.state, 'AWAITING_RECOVERY');
  assert.equal(next.record.held, 'restarted');
  const steady = nextHostRecord(
    current,
    observe({ uptimeSeconds: 1, connectionId: 43 }),
    context({ now: NOW + 3000 }),
  );
  assert.equal(steady.record.state, 'ONLINE');
});

test("a kept check connection's id is never taken for a restart: only a fresh login's id is compared", () => {
  // Another manager's newer login was saved (500); this manager's kept connection is older (120).
  const current = record('ONLINE', { lastUptimeSeconds: 100, lastConnectionId: 500 });
  const kept = nextHostRecord(
    current,
    observe({ uptimeSeconds: 101, connectionId: 120, connectionFresh: false }),
    context(),
  );
  assert.equal(kept.record.state, 'ONLINE', kept.record.reason);
  assert.equal(kept.record.lastConnectionId, 500);
  // A fresh login after a real restart still shows it.
  const restarted = nextHostRecord(
    kept.record,
    observe({ uptimeSeconds: 101, connectionId: 3, connectionFresh: true }),
    context({ now: NOW + 3000 }),
  );
  assert.equal(restarted.record.state, 'AWAITING_RECOVERY');
});

test('a start later than the known one is a restart, though uptime and connection ids say nothing', () => {
  const bootedBy = NOW - 2_000_000;
  const current = record('ONLINE', { lastUptimeSeconds: 2, lastConnectionId: 9, bootedBy });
  // The same server, read again and again: each reading dates its start within a second.
  let steady = current;
  for (const fraction of [0, 400, 999, 150]) {
    steady = nextHostRecord(
      steady,
      observe({ uptimeSeconds: 3, connectionId: 12, serverTimeMs: bootedBy + 3000 + fraction }),
      context(),
    ).record;
    assert.equal(steady.state, 'ONLINE', steady.reason);
  }
  assert.equal(steady.bootedBy, bootedBy, 'the tightest bound is kept');
  // Killed at 3 s and started again: 3 s later it reads uptime 3 again and higher ids.
  const restarted = nextHostRecord(
    steady,
    observe({ uptimeSeconds: 3, connectionId: 30, serverTimeMs: bootedBy + 6000 }),
    context({ now: NOW + 6000 }),
  );
  assert.equal(restarted.record.state, 'AWAITING_RECOVERY');
  assert.equal(restarted.record.held, 'restarted');
  assert.match(restarted.record.reason, /started 2\.0 s or more after its known start/);
  assert.equal(restarted.record.bootedBy, bootedBy + 3000, 'the new start is the bound now');
});

test('a server seen gone (connect refused or reset) that answers with an uptime not reaching back before that restarted', () => {
  const current = record('ONLINE', { lastUptimeSeconds: 2, lastConnectionId: 9 });
  const refused = observe({
    reachable: false,
    refusal: 'refused',
    error: 'connect ECONNREFUSED',
    uptimeSeconds: undefined,
    at: NOW - 800,
  });
  const gone = nextHostRecord(current, refused, context({ now: NOW - 800 })).record;
  assert.equal(gone.processGoneAt, NOW - 800);
  const later = nextHostRecord(gone, { ...refused, at: NOW - 400 }, context({ now: NOW - 400 }));
  assert.equal(later.record.processGoneAt, NOW - 800, 'the first time it was seen gone');
  // A timeout says nothing about the process: nothing is remembered.
  const silent = nextHostRecord(
    current,
    observe({ reachable: false, error: 'connect ETIMEDOUT', uptimeSeconds: undefined }),
    context(),
  ).record;
  assert.equal(silent.processGoneAt, undefined);

  const back = nextHostRecord(
    later.record,
    observe({ uptimeSeconds: 2, connectionId: 40 }),
    context(),
  );
  assert.equal(back.record.state, 'AWAITING_RECOVERY');
  assert.equal(back.record.held, 'restarted');
  assert.match(
    back.record.reason,
    /process was known gone 0\.8 s ago \(port closed, or its agent said so\) and it has been up 2 s/,
  );
  assert.equal(back.record.processGoneAt, undefined);

  // A firewall's reject on a server that ran on: its uptime reaches far back. Not a restart.
  const ranOn = nextHostRecord(
    { ...later.record, lastUptimeSeconds: 400 },
    observe({ uptimeSeconds: 401, connectionId: 40 }),
    context(),
  );
  assert.equal(ranOn.record.state, 'ONLINE', ranOn.record.reason);
  assert.equal(ranOn.record.processGoneAt, undefined);
});

test("an observation from before the process was known gone (a failover's proof, after the cycle's checks) neither uses nor drops it", () => {
  const gone = record('ONLINE', { lastUptimeSeconds: 400, processGoneAt: NOW + 500 });
  const stale = nextHostRecord(gone, observe({ uptimeSeconds: 401, at: NOW }), context());
  assert.equal(stale.record.state, 'ONLINE', stale.record.reason);
  assert.equal(stale.record.processGoneAt, NOW + 500, 'kept for the next observation');
  const back = nextHostRecord(
    stale.record,
    observe({ uptimeSeconds: 1, at: NOW + 3000 }),
    context({ now: NOW + 3000 }),
  );
  assert.equal(back.record.held, 'restarted');
  assert.equal(back.record.processGoneAt, undefined);
});
