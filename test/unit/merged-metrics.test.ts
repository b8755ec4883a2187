/**
 * The fleet's one /metrics: several clusters' expositions merged under one HELP and TYPE per
 * metric; scrapes at the same instant, or just after, share one rendering.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Gauge, Registry } from 'prom-client';
import { gzipped } from '../../src/exporter/encoding.js';
import { MERGED_REUSE_MS, mergedMetrics } from '../../src/exporter/merge.js';

/** A cluster's registry with one gauge; collect() counts how often it is rendered. */
function source(cluster: string, counter: { renders: number }): { registry: Registry } {
  const registry = new Registry();
  registry.setDefaultLabels({ cluster });
  new Gauge({
    name: 'switchyard_up',
    help: 'Up.',
    registers: [registry],
    collect() {
      counter.renders += 1;
      this.set(counter.renders);
    },
  });
  return { registry };
}

test("merged metrics: one HELP and TYPE per metric, every cluster's samples under it", async () => {
  const counter = { renders: 0 };
  const merged = mergedMetrics([source('a', counter), source('b', counter)]);
  const { body, contentType } = await merged.render();
  assert.ok(Buffer.isBuffer(body), 'encoded once, for every scrape that shares it');
  assert.equal(contentType, 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(
    body.toString(),
    '# HELP switchyard_up Up.\n# TYPE switchyard_up gauge\nswitchyard_up{cluster="a"} 1\nswitchyard_up{cluster="b"} 2\n',
  );
});

test('merged metrics: scrapes during a rendering or within MERGED_REUSE_MS after share it; later ones render afresh', async () => {
  let now = 0;
  const counter = { renders: 0 };
  const merged = mergedMetrics([source('a', counter)], { now: () => now });
  const together = await Promise.all([merged.render(), merged.render(), merged.render()]);
  assert.equal(counter.renders, 1);
  assert.ok(together.every((result) => result.body === together[0]?.body));
  now += MERGED_REUSE_MS - 1;
  await merged.render();
  assert.equal(counter.renders, 1, 'a scrape queued behind the rendering gets it');
  now += 1;
  const fresh = await merged.render();
  assert.equal(counter.renders, 2);
  assert.match(fresh.body.toString(), /switchyard_up\{cluster="a"\} 2/);
});

test('merged metrics: scrapes that share a rendering share its gzip too; a fresh rendering gets its own', async () => {
  let now = 0;
  const counter = { renders: 0 };
  const merged = mergedMetrics([source('a', counter)], { now: () => now });
  const [first, second] = await Promise.all([merged.render(), merged.render()]);
  assert.ok(first && second);
  const compressed = gzipped(first);
  assert.equal(gzipped(second), compressed, 'compressed once for both scrapes');
  assert.deepEqual(gunzipSync(await compressed), Buffer.from(first.body));
  now += MERGED_REUSE_MS;
  const fresh = await merged.render();
  assert.notEqual(gzipped(fresh), compressed);
  assert.match(gunzipSync(await gzipped(fresh)).toString(), /switchyard_up\{cluster="a"\} 2/);
});
