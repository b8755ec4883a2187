/** set-online --accept-errant over the CLI and the control API: the flag reaches the engine, bad bodies change nothing. */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { controlRouter } from '../../src/api/control-routes.js';
import { createHttpApp, listen } from '../../src/api/server.js';
import type { LoadedConfig } from '../../src/config/load.js';
import type { ControlPlane } from '../../src/engine/types.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { MemoryJournal } from '../../src/journal/journal.js';
import { testConfig } from '../unit/engine-fakes.js';
import { cli } from '../support/transfer-tests.js';

test('set-online: no body, {accept_errant: true}, and the CLI flag reach the engine; a malformed body is 400', async (t) => {
  process.env.SWITCHYARD_TOKEN = 'tok-accept';
  const calls: Array<[string, boolean | undefined]> = [];
  const engine = {
    setOnline: async (host: string, options?: { acceptErrant?: boolean }) => {
      calls.push([host, options?.acceptErrant]);
      if (host === 'db2' && !options?.acceptErrant)
        return { ok: false, code: 'refused', detail: 'db2 has transactions', errant: ['0-2-5'] };
      return { ok: true, detail: `${host} is ONLINE` };
    },
  } as unknown as ControlPlane;
  const server = await listen(
    createHttpApp({
      metrics: new SwitchyardMetrics('test', { processMetrics: false }),
      getTokens: () => [{ name: 'admin', source: { env: 'SWITCHYARD_TOKEN' }, scopes: ['admin'] }],
      apiRouters: [
        controlRouter({
          config: testConfig() as unknown as LoadedConfig,
          engine,
          journal: new MemoryJournal(),
        }),
      ],
      bodyLimit: '16kb',
    }),
    '127.0.0.1:0',
  );
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const post = (body?: string) =>
    fetch(`${base}/api/v1/hosts/db1/online`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer tok-accept',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body,
    });

  assert.equal((await post()).status, 200);
  assert.equal((await post('{"accept_errant":true}')).status, 200);
  assert.equal((await post('{"accept_errant":"yes"}')).status, 400);
  assert.equal((await post('{"accept":true}')).status, 400);
  assert.deepEqual(calls, [
    ['db1', false],
    ['db1', true],
  ]);

  const plain = await cli(['set-online', 'db1', '--url', base]);
  assert.equal(plain.code, 0, plain.stderr);
  const accepted = await cli(['set-online', 'db1', '--accept-errant', '--url', base]);
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.match(accepted.stderr, /warning: --accept-errant puts db1 online with transactions/);
  assert.deepEqual(calls.slice(2), [
    ['db1', false],
    ['db1', true],
  ]);

  // The refusal carries the errant GTID sets as data, beside the text.
  const refusal = await fetch(`${base}/api/v1/hosts/db2/online`, {
    method: 'POST',
    headers: { authorization: 'Bearer tok-accept' },
  });
  assert.equal(refusal.status, 409);
  assert.deepEqual(await refusal.json(), {
    error: 'refused',
    detail: 'db2 has transactions',
    steps: [],
    errant: ['0-2-5'],
  });
});
