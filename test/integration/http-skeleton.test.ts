import assert from 'node:assert/strict';
import { get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { test } from 'node:test';
import express from 'express';
import { createHttpApp, listen } from '../../src/api/server.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';

test('HTTP skeleton: auth, content type, size limit, malformed JSON, 404, metrics', async (t) => {
  process.env.SWITCHYARD_SKELETON_TOKEN = 'tok';
  const metrics = new SwitchyardMetrics('test', { processMetrics: false });
  metrics.setMode('active');
  const router = express.Router();
  router.post('/echo', (request, response) => {
    response.json({ got: request.body });
  });
  const server = await listen(
    createHttpApp({
      metrics,
      getTokens: () => [
        { name: 'admin', source: { env: 'SWITCHYARD_SKELETON_TOKEN' }, scopes: ['admin'] },
      ],
      apiRouters: [router],
      bodyLimit: '1kb',
    }),
    '127.0.0.1:0',
  );
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const post = (body: string, headers: Record<string, string>) =>
    fetch(`${base}/api/v1/echo`, { method: 'POST', body, headers });
  const json = { 'content-type': 'application/json' };

  assert.equal((await post('{}', json)).status, 401);
  assert.equal((await post('{}', { ...json, authorization: 'Bearer nope' })).status, 401);
  const ok = await post('{"a":1}', { ...json, authorization: 'Bearer tok' });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { got: { a: 1 } });
  const notJson = await post('a=1', { 'content-type': 'text/plain', authorization: 'Bearer tok' });
  assert.equal(notJson.status, 415);
  assert.equal(((await notJson.json()) as { error: string }).error, 'unsupported_media_type');
  assert.equal((await post('{"a":', { ...json, authorization: 'Bearer tok' })).status, 400);
  assert.equal(
    (await post(JSON.stringify({ a: 'x'.repeat(5000) }), { ...json, authorization: 'Bearer tok' }))
      .status,
    413,
  );
  assert.equal(
    (await fetch(`${base}/api/v1/nothing`, { headers: { authorization: 'Bearer tok' } })).status,
    404,
  );
  const scrape = await fetch(`${base}/metrics`);
  assert.equal(scrape.status, 200);
  assert.match(await scrape.text(), /switchyard_mode\{mode="active",cluster="test"\} 1/);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
});

/** A GET with exactly these headers (fetch adds its own Accept-Encoding and decodes). */
function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(url, { headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    }).on('error', reject);
  });
}

test('/metrics is gzip-compressed for a client that asks for it, as Prometheus does', async (t) => {
  const metrics = new SwitchyardMetrics('test', { processMetrics: false });
  metrics.setMode('active');
  const server = await listen(
    createHttpApp({ metrics, getTokens: () => [], apiRouters: [] }),
    '127.0.0.1:0',
  );
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;

  // Prometheus's own header.
  const gzip = await rawGet(url, { 'accept-encoding': 'gzip' });
  assert.equal(gzip.headers['content-encoding'], 'gzip');
  assert.equal(gzip.headers.vary, 'Accept-Encoding');
  assert.match(String(gzip.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const decoded = gunzipSync(gzip.body).toString();
  assert.match(decoded, /^# HELP /);
  assert.match(decoded, /switchyard_mode\{mode="active",cluster="test"\} 1\n/);
  assert.ok(gzip.body.length < decoded.length / 2, `${gzip.body.length} of ${decoded.length}`);

  for (const header of [undefined, 'identity', 'gzip;q=0', 'br']) {
    const plain = await rawGet(url, header === undefined ? {} : { 'accept-encoding': header });
    assert.equal(plain.headers['content-encoding'], undefined, `Accept-Encoding: ${header}`);
    assert.equal(plain.body.toString(), decoded, `Accept-Encoding: ${header}`);
  }
});
