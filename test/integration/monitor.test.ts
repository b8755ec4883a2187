import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import type { ClusterState } from '../../src/domain/cluster-state.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { updateMetrics } from '../../src/exporter/update.js';
import { exportEngineState } from '../../src/exporter/engine-state.js';
import { silentLogger } from '../../src/log.js';
import { HeartbeatWriter } from '../../src/monitor/heartbeat.js';
import { Monitor, type MonitorCycle } from '../../src/monitor/monitor.js';
import { setOnline } from '../../src/monitor/state-machine.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { writeTestConfig } from '../support/daemon.js';
import { startSandbox } from '../support/sandbox.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A state with no host history yet and db1 holding the writer IP, as the engine would hand in. */
const writerOnDb1 = (cluster: string): ClusterState => ({
  version: 1,
  cluster,
  mode: 'active',
  hosts: {},
  roles: { writer: { '127.0.1.100': 'db1' } },
  updatedAt: 0,
});

test('monitor on a real sandbox: lag, REPLICATION_DELAY, REPLICATION_FAIL, HARD_OFFLINE, AWAITING_RECOVERY, and /metrics', async (t) => {
  if (!requireBinaries(t, [...MARIADB, ['promtool', 'prometheus']])) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const config = writeTestConfig(sandbox, 'monitor.yml', (raw) => {
    raw.monitor = {
      interval: '250ms',
      connect_timeout: '500ms',
      failures_before_down: 3,
      max_lag: '1500ms',
      auto_set_online: '0',
    };
    raw.heartbeat = { schema: 'switchyard', interval: '100ms' };
  });
  const metrics = new SwitchyardMetrics(config.cluster, { processMetrics: false });
  const monitor = new Monitor({ config, log: silentLogger, metrics });
  let state = writerOnDb1(config.cluster);
  const heartbeat = new HeartbeatWriter({ config, log: silentLogger });
  heartbeat.start(() => 'db1');
  t.after(() => heartbeat.stop());
  let last: MonitorCycle | undefined;
  const cycle = async () => {
    last = await monitor.runCycle(state);
    state = last.state;
    updateMetrics(metrics, last);
    // The engine's part (roles, mode), as the engine exports it after a cycle.
    exportEngineState(metrics, { config, writerRole: 'writer', state, pipelineUp: true });
    return last;
  };
  const hostState = (name: string) => state.hosts[name]?.state;
  const observation = (name: string) => last?.observations.find((obs) => obs.host === name);
  const cyclesUntil = async (what: string, done: () => boolean, max = 60) => {
    for (let index = 0; index < max; index++) {
      await cycle();
      if (done()) return index + 1;
      await sleep(250);
    }
    throw new Error(
      `not reached: ${what}; states ${JSON.stringify(Object.fromEntries(Object.entries(state.hosts).map(([host, record]) => [host, `${record.state}: ${record.reason}`])))}`,
    );
  };

  await cyclesUntil(
    'every host ONLINE with a heartbeat lag',
    () =>
      ['db1', 'db2', 'db3'].every((host) => hostState(host) === 'ONLINE') &&
      typeof observation('db3')?.heartbeatLagSeconds === 'number',
  );
  const db3 = sandbox.instance('db3');

  // 1. SQL thread stopped on db3: lag grows second by second, then REPLICATION_DELAY; restarted: ONLINE.
  await db3.sql('STOP SLAVE SQL_THREAD');
  const lags: number[] = [];
  for (let second = 0; second < 4; second++) {
    await sleep(1000);
    await cycle();
    lags.push(observation('db3')?.heartbeatLagSeconds ?? Number.NaN);
  }
  t.diagnostic(
    `db3 heartbeat lag with its SQL thread stopped, one sample a second: ${lags.map((lag) => lag.toFixed(3)).join(', ')} s`,
  );
  for (let index = 1; index < lags.length; index++) {
    const step = (lags[index] as number) - (lags[index - 1] as number);
    assert.ok(
      step > 0.7 && step < 1.6,
      `lag grows about one second per second (step ${step.toFixed(3)})`,
    );
  }
  assert.ok(
    lags.some((lag) => lag % 1 !== 0),
    'sub-second precision',
  );
  assert.equal(hostState('db3'), 'REPLICATION_DELAY');
  const delayed = (await metrics.render()).body;
  assert.match(
    delayed,
    /switchyard_host_state\{host="db3",state="REPLICATION_DELAY",cluster="sandbox"\} 1/,
  );
  assert.match(
    delayed,
    /switchyard_replication_lag_seconds\{host="db3",cluster="sandbox"\} \d+\.\d+/,
  );
  await db3.sql('START SLAVE SQL_THREAD');
  await cyclesUntil('db3 ONLINE again', () => hostState('db3') === 'ONLINE');

  // 2. IO thread stopped: REPLICATION_FAIL.
  await db3.sql('STOP SLAVE IO_THREAD');
  await cyclesUntil('db3 REPLICATION_FAIL', () => hostState('db3') === 'REPLICATION_FAIL', 10);
  assert.match(
    (await metrics.render()).body,
    /switchyard_replication_io_running\{host="db3",cluster="sandbox"\} 0/,
  );
  await db3.sql('START SLAVE IO_THREAD');
  await cyclesUntil('db3 ONLINE after the IO thread restarts', () => hostState('db3') === 'ONLINE');

  // 3. A killed server: HARD_OFFLINE after exactly failures_before_down failed cycles.
  const db2 = sandbox.instance('db2');
  await db2.kill();
  for (let failed = 1; failed <= 3; failed++) {
    await cycle();
    assert.equal(observation('db2')?.reachable, false);
    assert.equal(
      hostState('db2'),
      failed < 3 ? 'ONLINE' : 'HARD_OFFLINE',
      `after ${failed} failed cycle(s)`,
    );
  }
  assert.match(
    (await metrics.render()).body,
    /switchyard_host_up\{host="db2",cluster="sandbox"\} 0/,
  );

  // 4. Restarted: AWAITING_RECOVERY, not ONLINE, however long it stays healthy.
  await db2.start();
  await cyclesUntil('db2 reachable again', () => observation('db2')?.reachable === true, 20);
  for (let index = 0; index < 4; index++) {
    await cycle();
    assert.equal(hostState('db2'), 'AWAITING_RECOVERY');
    await sleep(250);
  }
  const body = (await metrics.render()).body;
  assert.match(
    body,
    /switchyard_host_state\{host="db2",state="AWAITING_RECOVERY",cluster="sandbox"\} 1/,
  );
  assert.match(body, /switchyard_writable_hosts\{cluster="sandbox"\} 1/);
  assert.match(
    body,
    /switchyard_role_ip_assigned\{role="writer",ip="127.0.1.100",host="db1",cluster="sandbox"\} 1/,
  );

  // promtool must find nothing to complain about in the exposition.
  const checked = await new Promise<{ code: number; output: string }>((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (error, stdout, stderr) =>
      resolve({
        code: error ? Number((error as { code?: number }).code ?? 1) : 0,
        output: `${stdout}${stderr}`,
      }),
    );
    child.stdin?.end(body);
  });
  assert.equal(checked.code, 0, checked.output);
});

// Seen in the repeated-faults test: a writer killed and started again seconds after a first
// restart came back ONLINE. Its uptime read the same before and after (whole seconds), and the
// clients, replicas and agents that reconnected first had pushed the connection ids past the
// monitor's last one, so neither showed the restart.
test('a server that restarts after a short life is held, though its uptime reads no lower and its connection ids grew', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const config = writeTestConfig(sandbox, 'monitor-restart.yml', (raw) => {
    raw.monitor = { interval: '250ms', connect_timeout: '500ms', auto_set_online: '0' };
  });
  const monitor = new Monitor({ config, log: silentLogger });
  let state = writerOnDb1(config.cluster);
  let last: MonitorCycle | undefined;
  const cycle = async () => {
    last = await monitor.runCycle(state);
    state = last.state;
  };
  const db3 = sandbox.instance('db3');
  const record = () => state.hosts.db3 as ClusterState['hosts'][string];
  const uptime = () => last?.observations.find((obs) => obs.host === 'db3')?.uptimeSeconds ?? -1;
  const cyclesUntil = async (what: string, done: () => boolean) => {
    for (let index = 0; index < 60; index++) {
      await cycle();
      if (done()) return;
      await sleep(250);
    }
    throw new Error(`not reached: ${what}; db3 ${record()?.state}: ${record()?.reason}`);
  };
  /** New logins until the server's ids are past `id`, as reconnecting clients do after a restart. */
  const pushConnectionIds = async (id: number) => {
    for (;;) {
      const connection = await db3.rootConnection();
      const [[row]] = (await connection.query('SELECT CONNECTION_ID() AS id')) as unknown as [
        Array<{ id: number }>,
      ];
      connection.destroy();
      if (Number(row?.id) > id + 2) return;
    }
  };
  /** Kills db3 and starts it again; with `seenGone`, a cycle runs while it is down. */
  const restartQuickly = async (seenGone: boolean) => {
    const before = { uptime: uptime(), connectionId: record().lastConnectionId ?? 0 };
    await db3.kill();
    if (seenGone) {
      await cycle();
      assert.equal(last?.observations.find((obs) => obs.host === 'db3')?.refusal, 'refused');
      assert.notEqual(record().processGoneAt, undefined, 'the refused connect is remembered');
    }
    await db3.start();
    await pushConnectionIds(before.connectionId);
    // Until the uptime reads at least what it read before the kill: it does not go backwards.
    for (;;) {
      const [row] = await db3.sql("SHOW GLOBAL STATUS LIKE 'Uptime'");
      if (Number(row?.Value) >= before.uptime) break;
      await sleep(200);
    }
    await cycle();
    const observed = last?.observations.find((obs) => obs.host === 'db3');
    t.diagnostic(
      `before the kill: uptime ${before.uptime} s, connection id ${before.connectionId}; after: uptime ${observed?.uptimeSeconds} s, connection id ${observed?.connectionId}; ${record().state}: ${record().reason}`,
    );
    assert.ok((observed?.uptimeSeconds ?? -1) >= before.uptime, 'the uptime did not go backwards');
    assert.ok((observed?.connectionId ?? 0) > before.connectionId, 'the ids grew');
  };
  const setOnlineAndWait = async () => {
    state = { ...state, hosts: { ...state.hosts, db3: setOnline(record(), Date.now()).record } };
    await cyclesUntil('db3 ONLINE', () => record().state === 'ONLINE');
    // A life of a few seconds, as between two restarts in a crash loop.
    while (uptime() < 3) {
      await sleep(250);
      await cycle();
    }
  };

  await cyclesUntil('db3 ONLINE', () => record()?.state === 'ONLINE');
  await db3.kill();
  await db3.start();
  await cyclesUntil('db3 held after a first restart', () => record().held === 'restarted');
  await setOnlineAndWait();

  // No check while it was down: only its start, later than the one it was known by, tells.
  await restartQuickly(false);
  assert.equal(record().state, 'AWAITING_RECOVERY');
  assert.equal(record().held, 'restarted');
  assert.match(record().reason, /started [\d.]+ s or more after its known start/);

  // A check saw its port closed: the uptime now does not reach back before that.
  await setOnlineAndWait();
  await restartQuickly(true);
  assert.equal(record().state, 'AWAITING_RECOVERY');
  assert.equal(record().held, 'restarted');
  assert.match(
    record().reason,
    /process was known gone [\d.]+ s ago \(port closed, or its agent said so\)/,
  );
  assert.equal(record().processGoneAt, undefined, 'forgotten once it answers');

  // And a server that only ran on: no restart, however many cycles.
  await setOnlineAndWait();
  for (let index = 0; index < 8; index++) {
    await cycle();
    assert.equal(record().state, 'ONLINE', record().reason);
    await sleep(250);
  }
});
