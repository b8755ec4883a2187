import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import pino from 'pino';
import { createHttpApp, listen } from '../../src/api/server.js';
import type { ClusterRuntime } from '../../src/daemon/cluster-runtime.js';
import { clusterApi, clusterMetrics } from '../../src/daemon/cluster-api.js';
import type { IncomingAlert } from '../../src/engine/types.js';
import { webhookRouter } from '../../src/receiver/webhook.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';

/** Just what the API layer reads of a cluster: its name, status, engine and metrics. */
function fakeCluster(name: string) {
  const received: IncomingAlert[][] = [];
  let pipelineNoted = 0;
  const metrics = new SwitchyardMetrics(name, { processMetrics: false });
  metrics.hostUp.set({ host: 'db1' }, 1);
  const cluster = {
    name,
    haEnabled: false,
    metrics,
    config: { cluster: name, hosts: { db1: {} } },
    options: { log: pino({ level: 'silent' }) },
    status: () => ({ cluster: name }),
    analysis: () => ({ cluster: name }),
    engine: {
      handleAlerts: async (alerts: IncomingAlert[]) => {
        received.push(alerts);
        return alerts.map((alert) => ({
          alert: alert.name,
          status: alert.status,
          decision: 'ignored' as const,
          reason: `seen by ${name}`,
        }));
      },
      notePipelineAlive: () => {
        pipelineNoted++;
      },
    },
  };
  return {
    cluster: cluster as unknown as ClusterRuntime,
    received,
    pipelineNoted: () => pipelineNoted,
  };
}

async function serve(t: { after(fn: () => void): void }, clusters: ClusterRuntime[]) {
  process.env.SWITCHYARD_FLEET_TOKEN = 'tok';
  const server = await listen(
    createHttpApp({
      metrics: clusterMetrics(clusters),
      getTokens: () => [
        { name: 'admin', source: { env: 'SWITCHYARD_FLEET_TOKEN' }, scopes: ['admin'] },
      ],
      // Each cluster's own receiver, as daemonRouters mounts it.
      ...clusterApi(clusters, (cluster) => [
        webhookRouter({ engine: cluster.engine, log: pino({ level: 'silent' }) }),
      ]),
    }),
    '127.0.0.1:0',
  );
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: 'Bearer tok', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, text, body: text.startsWith('{') ? JSON.parse(text) : text };
  };
}

const alert = (name: string, labels: Record<string, string>) => ({
  status: 'firing',
  labels: { alertname: name, ...labels },
  annotations: {},
  startsAt: '2026-01-01T00:00:00Z',
  endsAt: '0001-01-01T00:00:00Z',
  generatorURL: '',
  fingerprint: name,
});
const webhook = (alerts: unknown[]) => ({
  version: '4',
  groupKey: 'g',
  truncatedAlerts: 0,
  status: 'firing',
  receiver: 'switchyard',
  groupLabels: {},
  commonLabels: {},
  commonAnnotations: {},
  externalURL: 'http://alertmanager',
  alerts,
});

test('one cluster: routes answer with or without its name, as before', async (t) => {
  const alpha = fakeCluster('alpha');
  const request = await serve(t, [alpha.cluster]);
  assert.deepEqual((await request('GET', '/api/v1/status')).body, { cluster: 'alpha' });
  assert.deepEqual((await request('GET', '/api/v1/clusters/alpha/status')).body, {
    cluster: 'alpha',
  });
  assert.deepEqual((await request('GET', '/api/v1/status?cluster=alpha')).body, {
    cluster: 'alpha',
  });
  assert.equal((await request('GET', '/api/v1/clusters/beta/status')).status, 404);
});

test('several clusters: a name is required (the error lists them), path and query both pick one, scopes read the plain route', async (t) => {
  const alpha = fakeCluster('alpha');
  const beta = fakeCluster('beta');
  const request = await serve(t, [alpha.cluster, beta.cluster]);
  const unnamed = await request('GET', '/api/v1/status');
  assert.equal(unnamed.status, 400);
  assert.equal(unnamed.body.error, 'cluster_required');
  assert.match(unnamed.body.detail, /2 clusters \(alpha, beta\)/);
  assert.deepEqual((await request('GET', '/api/v1/clusters/beta/status')).body, {
    cluster: 'beta',
  });
  assert.deepEqual((await request('GET', '/api/v1/analysis?cluster=beta')).body, {
    cluster: 'beta',
  });
  assert.equal((await request('GET', '/api/v1/clusters/alpha/status?cluster=beta')).status, 400);
  assert.equal((await request('GET', '/api/v1/status?cluster=a&cluster=b')).status, 400);
  const unknown = await request('GET', '/api/v1/clusters/gamma/status');
  assert.equal(unknown.status, 404);
  assert.match(unknown.body.detail, /no cluster "gamma" here \(clusters: alpha, beta\)/);
  assert.deepEqual((await request('GET', '/api/v1/clusters')).body, {
    clusters: ['alpha', 'beta'],
  });
});

test('several clusters: one webhook routes each alert by its cluster label; the Watchdog shows every pipeline alive', async (t) => {
  const alpha = fakeCluster('alpha');
  const beta = fakeCluster('beta');
  const request = await serve(t, [alpha.cluster, beta.cluster]);
  const answer = await request(
    'POST',
    '/api/v1/alerts',
    webhook([
      alert('SwitchyardWriterDown', { cluster: 'beta', host: 'db1' }),
      alert('SwitchyardHostDown', { cluster: 'alpha', host: 'db3' }),
      alert('Watchdog', {}),
      alert('SwitchyardHostDown', { cluster: 'gamma', host: 'db1' }),
    ]),
  );
  assert.equal(answer.status, 200, answer.text);
  assert.deepEqual(
    alpha.received.flat().map((entry) => entry.name),
    ['SwitchyardHostDown'],
  );
  assert.deepEqual(
    beta.received.flat().map((entry) => entry.name),
    ['SwitchyardWriterDown'],
  );
  const ignored = (answer.body.decisions as Array<{ alert: string; reason: string }>).filter(
    (decision) => /no cluster of this manager/.test(decision.reason),
  );
  assert.equal(ignored.length, 2, 'the Watchdog and the unknown cluster act nowhere');
  const watchdogOnly = await request('POST', '/api/v1/alerts', webhook([alert('Watchdog', {})]));
  assert.equal(watchdogOnly.status, 200);
  assert.ok(alpha.pipelineNoted() >= 1 && beta.pipelineNoted() >= 1);
  // Addressed to one cluster, the webhook is that cluster's alone, as with one manager per cluster.
  await request('POST', '/api/v1/clusters/alpha/alerts', webhook([alert('X', { host: 'db1' })]));
  assert.deepEqual(
    alpha.received.at(-1)?.map((entry) => entry.name),
    ['X'],
  );
});

test('/metrics of several clusters: one HELP and TYPE per family, every series with its cluster', async (t) => {
  const request = await serve(t, [fakeCluster('alpha').cluster, fakeCluster('beta').cluster]);
  const text = (await request('GET', '/metrics')).text;
  assert.equal(text.match(/^# HELP switchyard_host_up /gm)?.length, 1);
  assert.equal(text.match(/^# TYPE switchyard_host_up /gm)?.length, 1);
  assert.match(
    text,
    /switchyard_host_up\{host="db1",cluster="alpha"\} 1\nswitchyard_host_up\{host="db1",cluster="beta"\} 1/,
  );
  // Every sample line comes after its own family's TYPE line.
  let family = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) family = line.split(' ')[2] as string;
    else if (line && !line.startsWith('#'))
      assert.ok(line.startsWith(family), `${line} under ${family}`);
  }
});
