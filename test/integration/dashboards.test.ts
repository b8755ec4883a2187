import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { readSecret } from '../../src/config/secrets.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { promtoolCheckMetrics, startPrometheus } from '../support/prometheus.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

interface Target { refId: string; expr: string; datasource: { type: string; uid: string } }
interface Panel { id: number; title: string; type: string; gridPos: { x: number; y: number; w: number; h: number }; datasource: { uid: string }; targets: Target[] }
interface Dashboard { uid: string; title: string; schemaVersion: number; panels: Panel[]; templating: { list: Array<{ name: string; type: string }> } }

const root = new URL('../../grafana/dashboards/', import.meta.url).pathname;
const dashboards = ['switchyard-overview.json', 'switchyard-host.json'].map((file) => JSON.parse(readFileSync(`${root}${file}`, 'utf8')) as Dashboard);

test('dashboards are structurally valid Grafana dashboards with datasource, cluster and host variables', () => {
  for (const dashboard of dashboards) {
    assert.ok(dashboard.uid && dashboard.title && dashboard.schemaVersion >= 36, `${dashboard.uid}: uid, title, schemaVersion`);
    const variables = dashboard.templating.list.map((variable) => variable.name);
    assert.ok(variables.includes('datasource') && variables.includes('cluster'), `${dashboard.uid}: datasource and cluster variables`);
    assert.equal(dashboard.templating.list.find((variable) => variable.name === 'datasource')?.type, 'datasource');
    const ids = dashboard.panels.map((panel) => panel.id);
    assert.equal(new Set(ids).size, ids.length, `${dashboard.uid}: unique panel ids`);
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      assert.ok(Number.isInteger(x) && Number.isInteger(y) && w > 0 && h > 0 && x + w <= 24, `${panel.title}: gridPos inside the 24-column grid`);
      assert.equal(panel.datasource.uid, '${datasource}', `${panel.title}: uses the datasource variable`);
      assert.ok(panel.targets.length > 0, `${panel.title}: has queries`);
      for (const target of panel.targets) {
        assert.ok(target.refId && target.expr, `${panel.title}: refId and expr`);
        assert.equal(target.datasource.uid, '${datasource}');
        assert.match(target.expr, /cluster="\$cluster"/, `${panel.title}: filtered by cluster`);
      }
    }
  }
  assert.ok(dashboards[1]?.templating.list.some((variable) => variable.name === 'host'), 'the host dashboard has a host variable');
});

test('every panel query returns data from a real Prometheus scraping a real Switchyard on a sandbox, whose whole /metrics passes promtool check metrics', async (t) => {
  if (!requireBinaries(t, [...MARIADB, ['prometheus', 'prometheus'], ['promtool', 'prometheus']])) return;
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
  await waitFor('db1 to hold the writer role', async () => daemon.status().roles.writer?.['127.0.1.100'] === 'db1', 20_000);
  // Produce the counters a fresh cluster has not got yet: a switchover (actions, failovers) and a webhook.
  const moved = await daemon.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(moved.ok, true, moved.detail);
  const token = readSecret({ file: config.auth.token_file }, 'token');
  const webhook = await fetch(`${url}/api/v1/alerts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ version: '4', status: 'firing', alerts: [{ status: 'firing', labels: { alertname: 'Watchdog' }, annotations: {}, startsAt: new Date().toISOString() }] }),
  });
  assert.equal(webhook.status, 200);
  await waitFor('Prometheus to have several scrapes of the counters', async () => (await prometheus.query('count_over_time(switchyard_failovers_total[1m]) >= 4')).length > 0, 30_000, 500);
  await waitFor('a scheduled consistency check to have completed and been scraped', async () => (await prometheus.query('switchyard_checksum_last_run_timestamp_seconds > 0')).length > 0, 60_000, 500);
  await waitFor('the checksum results to be scraped', async () => (await prometheus.query('switchyard_checksum_diff_chunks')).length > 0, 30_000, 500);

  // The whole exposition of a running manager, prom-client's process and nodejs defaults included.
  const exposition = await (await fetch(`${url}/metrics`)).text();
  for (const family of ['switchyard_check_duration_seconds_bucket', 'switchyard_failovers_total', 'switchyard_checksum_diff_chunks', 'process_cpu_seconds_total', 'nodejs_active_handles', 'nodejs_gc_duration_seconds_bucket']) {
    assert.match(exposition, new RegExp(`^${family}\\{`, 'm'), `/metrics has ${family}`);
  }
  const checked = await promtoolCheckMetrics(exposition);
  assert.equal(checked.code, 0, `promtool check metrics: ${checked.output}`);

  const substitute = (expr: string) => expr.replaceAll('$cluster', 'sandbox').replaceAll('$host', 'db3').replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m');
  const empty: string[] = [];
  for (const dashboard of dashboards) {
    for (const panel of dashboard.panels) {
      for (const target of panel.targets) {
        const result = await prometheus.query(substitute(target.expr));
        if (result.length === 0) empty.push(`${dashboard.uid} / ${panel.title} / ${target.refId}: ${target.expr}`);
      }
    }
  }
  assert.deepEqual(empty, [], 'every panel query returns data');
});

test('promtool check metrics rejects prom-client defaults as shipped (the check above can fail)', async (t) => {
  if (!requireBinaries(t, [['promtool', 'prometheus']])) return;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const checked = await promtoolCheckMetrics(await registry.metrics());
  assert.notEqual(checked.code, 0);
  assert.match(checked.output, /nodejs_active_handles_total non-counter metrics should not have "_total" suffix/);
});
