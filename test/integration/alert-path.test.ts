import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { fastRules, startAlertmanager, startPrometheus } from '../support/prometheus.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

const RULES = new URL('../../alerts/switchyard.rules.yml', import.meta.url).pathname;

test('end to end with real Prometheus and Alertmanager: lag -> reader dropped -> restored; writer killed -> moved; pipeline down -> monitor takes over', async (t) => {
  if (
    !requireBinaries(t, [
      ...MARIADB,
      ['prometheus', 'prometheus'],
      ['prometheus-alertmanager', 'prometheus-alertmanager'],
    ])
  )
    return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const config = writeTestConfig(sandbox, 'alert-path.yml', (raw) => {
    raw.monitor = { ...FAST_MONITOR, max_lag: '2s' };
    raw.listen = `127.0.0.1:${sandbox.listenPort}`;
    raw.triggers = { alertmanager: true, monitor: false, pipeline_timeout: '8s' };
  });
  const { daemon, url } = await startDaemon(t, config);
  const alertmanager = await startAlertmanager(t, {
    webhookUrl: `${url}/api/v1/alerts`,
    credentialsFile: config.auth.token_file as string,
  });
  const prometheus = await startPrometheus(t, {
    targets: [`127.0.0.1:${sandbox.listenPort}`],
    ruleFiles: [
      fastRules(readFileSync(RULES, 'utf8'), join(sandbox.dir, 'fast.rules.yml'), {
        lagThresholdSeconds: 2,
      }),
    ],
    alertmanager: alertmanager.url,
  });
  const readerIps = (host: string) =>
    Object.entries(daemon.status().roles.reader ?? {})
      .filter(([, holder]) => holder === host)
      .map(([ip]) => ip);
  const alertDecisions = () =>
    daemon.journal.read().filter((entry) => entry.event.startsWith('alert.'));

  await waitFor(
    'the watchdog to arrive (pipeline up)',
    async () => daemon.engine.pipelineUp(),
    30_000,
    200,
  );
  await waitFor('db3 to hold a reader IP', async () => readerIps('db3').length === 1, 20_000);
  const pipelineMetric = await waitFor(
    'Prometheus to scrape switchyard_alerting_pipeline_up 1',
    async () => {
      const result = await prometheus.query('switchyard_alerting_pipeline_up');
      return result[0]?.value[1] === '1' ? result : undefined;
    },
    20_000,
    250,
  );
  assert.equal(pipelineMetric[0]?.metric.cluster, 'sandbox');

  // 1. Lag on db3: alert -> webhook -> reader dropped (the monitor alone would not act: triggers.monitor is false).
  const lagStarted = Date.now();
  await sandbox.instance('db3').sql('STOP SLAVE SQL_THREAD');
  await waitFor(
    "the lag alert to drop db3's reader role",
    async () => readerIps('db3').length === 0,
    60_000,
    200,
  );
  t.diagnostic(
    `reader role dropped from db3 ${Date.now() - lagStarted} ms after its SQL thread stopped (lag threshold 2 s)`,
  );
  assert.ok(
    alertDecisions().some((entry) => entry.event === 'alert.drop_roles' && entry.host === 'db3'),
    'dropped by the alert',
  );
  await sandbox.instance('db3').sql('START SLAVE SQL_THREAD');
  await waitFor(
    "the resolved alert to restore db3's reader role",
    async () => readerIps('db3').length === 1,
    60_000,
    200,
  );
  assert.ok(
    alertDecisions().some((entry) => entry.event === 'alert.restore_roles' && entry.host === 'db3'),
    'restored by the resolved alert',
  );

  // 2. Writer killed: WriterDown -> webhook -> writer moved, on evidence.
  const killedAt = Date.now();
  await sandbox.instance('db1').kill();
  await waitFor(
    'the writer role to move to db2',
    async () => daemon.status().roles.writer?.['127.0.1.100'] === 'db2',
    60_000,
    100,
  );
  t.diagnostic(
    `writer moved to db2 ${Date.now() - killedAt} ms after kill -9, through the alert path`,
  );
  // The monitor trigger is off and the pipeline is up, so the failover ran inside a webhook's
  // handling: whichever alert about the dead writer arrived first (WriterDown, or
  // ReplicationBroken from its peer) made the engine re-check, and the evidence rule held.
  const sinceKill = daemon.journal.read().filter((entry) => entry.at >= killedAt);
  const failover = sinceKill.findIndex((entry) => entry.event === 'failover.decided');
  assert.ok(failover >= 0, 'a failover was decided');
  assert.ok(
    sinceKill.slice(0, failover).some((entry) => entry.event.startsWith('alert.')),
    'a webhook alert was handled before the failover decision',
  );
  assert.ok(
    daemon.engine.pipelineUp(),
    'the alerting pipeline was up: the monitor alone did not decide',
  );
  assert.equal(Number((await sandbox.instance('db2').sql('SELECT @@read_only AS ro'))[0]?.ro), 0);

  // 3. Alertmanager stopped: the watchdog goes silent, the pipeline metric drops, the monitor decides alone.
  await alertmanager.stop();
  await waitFor(
    'the pipeline to be declared down',
    async () => !daemon.engine.pipelineUp(),
    30_000,
    200,
  );
  await waitFor(
    'Prometheus to see switchyard_alerting_pipeline_up 0',
    async () => (await prometheus.query('switchyard_alerting_pipeline_up'))[0]?.value[1] === '0',
    20_000,
    250,
  );
  await sandbox.instance('db3').sql('STOP SLAVE SQL_THREAD');
  await waitFor(
    "the monitor alone to drop db3's reader role",
    async () => readerIps('db3').length === 0,
    30_000,
    200,
  );
  t.diagnostic('with Alertmanager stopped the monitor trigger took over');
});
