/**
 * The exposition writer behind /metrics: what it writes for one registry is what prom-client's
 * own registry.metrics() writes (the same lines, byte for byte, blank separators aside), and
 * several registries come out grouped under one HELP and TYPE per metric.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { renderExposition } from '../../src/exporter/exposition.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { HOST_STATES } from '../../src/domain/host-state.js';

const lines = (text: string) => text.split('\n').filter((line) => line !== '');

function populated(cluster: string): SwitchyardMetrics {
  const metrics = new SwitchyardMetrics(cluster, { processMetrics: false });
  for (const host of ['db1', 'db2', 'db3']) {
    metrics.hostUp.set({ host }, 1);
    metrics.setHostState(host, HOST_STATES[1] as string);
    metrics.lag.set({ host }, 0.125);
    metrics.uptime.set({ host }, 86_400);
    metrics.agentBuildInfo.set({ host, version: '1.2.3', protocol: '3' }, 1);
    metrics.roleIpAssigned.set({ role: 'reader', ip: '10.0.0.2', host }, 1);
  }
  metrics.setMode('active');
  metrics.writableHosts.set(1);
  metrics.fencesTotal.inc({ host: 'db1', how: 'read_only', by: 'release' });
  for (const check of ['ping', 'replication']) metrics.checkDuration.observe({ check }, 0.003);
  metrics.cycleDuration.observe(0.04);
  metrics.cycleDuration.observe(7);
  return metrics;
}

test("exposition: one cluster's metrics are prom-client's own lines, in its order", async () => {
  const metrics = populated('alpha');
  const ours = (await renderExposition([metrics.registry])).toString();
  const theirs = await metrics.registry.metrics();
  assert.deepEqual(lines(ours), lines(theirs));
  assert.match(
    ours,
    /^switchyard_check_duration_seconds_bucket\{le="0.005",cluster="alpha",check="ping"\} 1$/m,
  );
  assert.match(
    ours,
    /^switchyard_monitor_cycle_duration_seconds_bucket\{le="\+Inf",cluster="alpha"\} 2$/m,
  );
  assert.ok(ours.endsWith('\n'));
});

test('exposition: escapes HELP and label values as the text format wants, multi-byte text included', async () => {
  const registry = new Registry();
  registry.setDefaultLabels({ cluster: 'zürich "east"' });
  const gauge = new Gauge({
    name: 'odd_values',
    help: 'a help with a \\ backslash\nand a newline',
    labelNames: ['path'],
    registers: [registry],
  });
  gauge.set({ path: 'C:\\data\n"quoted" ünïcödé' }, Infinity);
  gauge.set({ path: 'plain' }, -Infinity);
  new Counter({ name: 'never_counted_total', help: 'no samples yet', registers: [registry] });
  const ours = (await renderExposition([registry])).toString();
  assert.deepEqual(lines(ours), lines(await registry.metrics()));
  assert.match(ours, /^# HELP odd_values a help with a \\\\ backslash\\nand a newline$/m);
  assert.match(
    ours,
    /^odd_values\{path="C:\\\\data\\n\\"quoted\\" ünïcödé",cluster="zürich \\"east\\""\} \+Inf$/m,
  );
  assert.match(
    ours,
    /^# TYPE never_counted_total counter$/m,
    'a metric without samples keeps its header',
  );
});

test('exposition: several registries, one HELP and TYPE per metric, families in first-met order', async () => {
  const first = populated('alpha');
  const second = populated('beta');
  const onlyInSecond = new Histogram({
    name: 'late_metric_seconds',
    help: 'registered in the second registry only',
    buckets: [1],
    registers: [second.registry],
  });
  onlyInSecond.observe(0.5);
  const text = (await renderExposition([first.registry, second.registry])).toString();
  for (const name of [
    'switchyard_host_up',
    'switchyard_check_duration_seconds',
    'late_metric_seconds',
  ])
    assert.equal(text.match(new RegExp(`^# TYPE ${name} `, 'gm'))?.length, 1, name);
  const hostUp = lines(text).filter((line) => line.startsWith('switchyard_host_up{'));
  assert.deepEqual(hostUp, [
    'switchyard_host_up{host="db1",cluster="alpha"} 1',
    'switchyard_host_up{host="db2",cluster="alpha"} 1',
    'switchyard_host_up{host="db3",cluster="alpha"} 1',
    'switchyard_host_up{host="db1",cluster="beta"} 1',
    'switchyard_host_up{host="db2",cluster="beta"} 1',
    'switchyard_host_up{host="db3",cluster="beta"} 1',
  ]);
  // Every sample of each registry is there, under its family's one header.
  const alone = [
    ...lines((await renderExposition([first.registry])).toString()),
    ...lines((await renderExposition([second.registry])).toString()),
  ].filter((line) => !line.startsWith('#'));
  assert.deepEqual(
    lines(text)
      .filter((line) => !line.startsWith('#'))
      .sort(),
    alone.sort(),
  );
  assert.match(text, /^late_metric_seconds_bucket\{le="1",cluster="beta"\} 1$/m);
});

test('exposition: grows past any size hint, and a hint larger than needed changes nothing', async () => {
  const registry = new Registry();
  const gauge = new Gauge({
    name: 'many',
    help: 'many series',
    labelNames: ['n'],
    registers: [registry],
  });
  for (let n = 0; n < 2000; n++) gauge.set({ n: `series-${n}-ü` }, n);
  const small = await renderExposition([registry], 0);
  const large = await renderExposition([registry], 10 * small.length);
  assert.ok(small.length > 4096 * 4, 'several growths');
  assert.deepEqual(small, large);
  assert.deepEqual(lines(small.toString()), lines(await registry.metrics()));
});
