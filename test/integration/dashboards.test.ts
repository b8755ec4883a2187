import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { readSecret } from '../../src/config/secrets.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { promtoolCheckMetrics, startPrometheus } from '../support/prometheus.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

interface Target {
  refId: string;
  expr: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  id: number;
  title: string;
  type: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource: { uid: string };
  targets: Target[];
}
interface Annotation {
  name: string;
  builtIn?: number;
  enable: boolean;
  datasource: { type: string; uid: string };
  expr?: string;
  titleFormat?: string;
  step?: string;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string }> };
  annotations: { list: Annotation[] };
}

const ANNOTATIONS = ['Failovers', 'Switchovers', 'Role drops', 'Mode changes'];
/** The Prometheus annotations of a dashboard (Grafana's built-in one left out). */
const promAnnotations = (dashboard: Dashboard) =>
  dashboard.annotations.list.filter((annotation) => !annotation.builtIn);

const root = new URL('../../grafana/dashboards/', import.meta.url).pathname;
const dashboards = ['switchyard-overview.json', 'switchyard-host.json'].map(
  (file) => JSON.parse(readFileSync(`${root}${file}`, 'utf8')) as Dashboard,
);

test('dashboards are structurally valid Grafana dashboards with datasource, cluster and host variables', () => {
  for (const dashboard of dashboards) {
    assert.ok(
      dashboard.uid && dashboard.title && dashboard.schemaVersion >= 36,
      `${dashboard.uid}: uid, title, schemaVersion`,
    );
    const variables = dashboard.templating.list.map((variable) => variable.name);
    assert.ok(
      variables.includes('datasource') && variables.includes('cluster'),
      `${dashboard.uid}: datasource and cluster variables`,
    );
    assert.equal(
      dashboard.templating.list.find((variable) => variable.name === 'datasource')?.type,
      'datasource',
    );
    const ids = dashboard.panels.map((panel) => panel.id);
    assert.equal(new Set(ids).size, ids.length, `${dashboard.uid}: unique panel ids`);
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      assert.ok(
        Number.isInteger(x) && Number.isInteger(y) && w > 0 && h > 0 && x + w <= 24,
        `${panel.title}: gridPos inside the 24-column grid`,
      );
      assert.equal(
        panel.datasource.uid,
        '${datasource}',
        `${panel.title}: uses the datasource variable`,
      );
      assert.ok(panel.targets.length > 0, `${panel.title}: has queries`);
      for (const target of panel.targets) {
        assert.ok(target.refId && target.expr, `${panel.title}: refId and expr`);
        assert.equal(target.datasource.uid, '${datasource}');
        assert.match(target.expr, /cluster="\$cluster"/, `${panel.title}: filtered by cluster`);
      }
    }
  }
  assert.ok(
    dashboards[1]?.templating.list.some((variable) => variable.name === 'host'),
    'the host dashboard has a host variable',
  );
  for (const dashboard of dashboards) {
    assert.deepEqual(
      promAnnotations(dashboard).map((annotation) => annotation.name),
      ANNOTATIONS,
      `${dashboard.uid}: annotations`,
    );
    for (const annotation of promAnnotations(dashboard)) {
      assert.equal(annotation.enable, true, `${annotation.name}: on by default`);
      assert.deepEqual(
        annotation.datasource,
        { type: 'prometheus', uid: '${datasource}' },
        `${annotation.name}: uses the datasource variable`,
      );
      assert.ok(annotation.titleFormat && annotation.step, `${annotation.name}: title and step`);
      assert.match(
        annotation.expr ?? '',
        /cluster="\$cluster"/,
        `${annotation.name}: filtered by cluster`,
      );
    }
  }
});

test('every panel query returns data from a real Prometheus scraping a real Switchyard on a sandbox, whose whole /metrics passes promtool check metrics', async (t) => {
  if (!requireBinaries(t, [...MARIADB, ['prometheus', 'prometheus'], ['promtool', 'prometheus']]))
    return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const config = writeTestConfig(sandbox, 'dashboards.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
    raw.listen = `127.0.0.1:${sandbox.listenPort}`;
    // The daemon's own schedule runs the consistency check every 5 s (node-cron, seconds field).
    raw.checksum = { schedule: '*/5 * * * * *' };
  });
  const { daemon, url } = await startDaemon(t, config);
  await sandbox.instance('db1').sql('CREATE DATABASE app');
  await sandbox.instance('db1').sql('CREATE TABLE app.t (id INT PRIMARY KEY, v INT)');
  await sandbox.instance('db1').sql('INSERT INTO app.t VALUES (1, 1), (2, 2), (3, 3)');
  const prometheus = await startPrometheus(t, { targets: [`127.0.0.1:${sandbox.listenPort}`] });
  await waitFor(
    'db1 to hold the writer role',
    async () => daemon.status().roles.writer?.['127.0.1.100'] === 'db1',
    20_000,
  );
  // Produce what a fresh cluster has not got yet, for the panels and the annotations: a
  // failover (kill -9 of db1), then, once db1 is back, a switchover to it (a minute apart would
  // be realistic; the failover annotation needs only the seconds before the switchover's fence),
  // a mode change, and a webhook.
  await waitFor(
    'Prometheus to have scraped db1 as the writer',
    async () =>
      (await prometheus.query('switchyard_role_ip_assigned{role="writer", host="db1"} == 1'))
        .length > 0,
    30_000,
    200,
  );
  await sandbox.instance('db1').kill();
  await waitFor(
    'the failover to db2',
    async () => daemon.status().roles.writer?.['127.0.1.100'] === 'db2',
    30_000,
  );
  await waitFor(
    'Prometheus to have scraped the failover',
    async () =>
      (await prometheus.query('count_over_time(switchyard_failovers_total{result="ok"}[1m]) >= 3'))
        .length > 0,
    30_000,
    500,
  );
  await sandbox.instance('db1').start();
  await waitFor(
    'db1 to be AWAITING_RECOVERY',
    async () =>
      daemon.status().hosts.find((host) => host.name === 'db1')?.state === 'AWAITING_RECOVERY',
    30_000,
  );
  const online = await daemon.engine.setOnline('db1');
  assert.equal(online.ok, true, online.detail);
  await waitFor(
    'db1 ONLINE',
    async () => daemon.status().hosts.find((host) => host.name === 'db1')?.state === 'ONLINE',
    20_000,
  );
  if (daemon.status().roles.writer?.['127.0.1.100'] !== 'db1') {
    const moved = await daemon.engine.moveRole('writer', 'db1', { force: false });
    assert.equal(moved.ok, true, moved.detail);
  }
  assert.equal(daemon.status().roles.writer?.['127.0.1.100'], 'db1');
  for (const mode of ['manual', 'active'] as const) {
    const changed = await daemon.engine.setMode(mode, 'dashboards test');
    assert.equal(changed.ok, true, changed.detail);
    await waitFor(
      `mode ${mode} scraped`,
      async () => (await prometheus.query(`switchyard_mode{mode="${mode}"} == 1`)).length > 0,
      10_000,
      200,
    );
  }
  const token = readSecret({ file: config.auth.token_file }, 'token');
  const webhook = await fetch(`${url}/api/v1/alerts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      version: '4',
      status: 'firing',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'Watchdog' },
          annotations: {},
          startsAt: new Date().toISOString(),
        },
      ],
    }),
  });
  assert.equal(webhook.status, 200);
  await waitFor(
    'Prometheus to have several scrapes of the webhook counter',
    async () =>
      (await prometheus.query('count_over_time(switchyard_webhook_requests_total[1m]) >= 3'))
        .length > 0,
    30_000,
    500,
  );
  await waitFor(
    'a scheduled consistency check to have completed and been scraped',
    async () =>
      (await prometheus.query('switchyard_checksum_last_run_timestamp_seconds > 0')).length > 0,
    60_000,
    500,
  );
  await waitFor(
    'the checksum results to be scraped',
    async () => (await prometheus.query('switchyard_checksum_diff_chunks')).length > 0,
    30_000,
    500,
  );

  // The whole exposition of a running manager, prom-client's process and nodejs defaults included.
  const exposition = await (await fetch(`${url}/metrics`)).text();
  for (const family of [
    'switchyard_check_duration_seconds_bucket',
    'switchyard_failovers_total',
    'switchyard_checksum_diff_chunks',
    'process_cpu_seconds_total',
    'nodejs_active_handles',
    'nodejs_gc_duration_seconds_bucket',
  ]) {
    assert.match(exposition, new RegExp(`^${family}\\{`, 'm'), `/metrics has ${family}`);
  }
  const checked = await promtoolCheckMetrics(exposition);
  assert.equal(checked.code, 0, `promtool check metrics: ${checked.output}`);

  const substitute = (expr: string) =>
    expr
      .replaceAll('$cluster', 'sandbox')
      .replaceAll('$host', 'db3')
      .replaceAll('$__rate_interval', '1m')
      .replaceAll('$__range', '5m');
  const empty: string[] = [];
  for (const dashboard of dashboards) {
    for (const panel of dashboard.panels) {
      for (const target of panel.targets) {
        const result = await prometheus.query(substitute(target.expr));
        if (result.length === 0)
          empty.push(`${dashboard.uid} / ${panel.title} / ${target.refId}: ${target.expr}`);
      }
    }
  }
  assert.deepEqual(empty, [], 'every panel query returns data');

  // Grafana runs annotation queries over the dashboard's time range: a range query over the last
  // five minutes must find each event. The host dashboard's role drops are db1's (it lost the writer).
  const end = Date.now() / 1000;
  const silent: string[] = [];
  for (const dashboard of dashboards) {
    for (const annotation of promAnnotations(dashboard)) {
      const expr = (annotation.expr ?? '')
        .replaceAll('$cluster', 'sandbox')
        .replaceAll('$host', 'db1');
      const response = await fetch(
        `${prometheus.url}/api/v1/query_range?${new URLSearchParams({ query: expr, start: String(end - 300), end: String(end), step: '1' })}`,
      );
      const body = (await response.json()) as {
        status: string;
        error?: string;
        data: { result: Array<{ metric: Record<string, string> }> };
      };
      assert.equal(body.status, 'success', `${annotation.name}: ${body.error}`);
      if (body.data.result.length === 0)
        silent.push(`${dashboard.uid} / ${annotation.name}: ${expr}`);
      t.diagnostic(
        `${dashboard.uid} / ${annotation.name}: ${body.data.result.map((series) => JSON.stringify(series.metric)).join(' ')}`,
      );
    }
  }
  assert.deepEqual(silent, [], 'every annotation query finds its event');
});

test('promtool check metrics rejects prom-client defaults as shipped (the check above can fail)', async (t) => {
  if (!requireBinaries(t, [['promtool', 'prometheus']])) return;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const checked = await promtoolCheckMetrics(await registry.metrics());
  assert.notEqual(checked.code, 0);
  assert.match(
    checked.output,
    /nodejs_active_handles_total non-counter metrics should not have "_total" suffix/,
  );
});
