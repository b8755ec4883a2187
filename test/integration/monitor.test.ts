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
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { writeTestConfig } from '../support/daemon.js';
import { startSandbox } from '../support/sandbox.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
  let state: ClusterState = {
    version: 1,
    cluster: config.cluster,
    mode: 'active',
    hosts: {},
    roles: { writer: { '127.0.1.100': 'db1' } },
    updatedAt: 0,
  };
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
