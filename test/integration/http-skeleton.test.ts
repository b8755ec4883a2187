import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
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
