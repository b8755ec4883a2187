import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { LoadedConfig } from '../../src/config/load.js';
import type { Logger } from '../../src/log.js';
import { HeartbeatWriter } from '../../src/monitor/heartbeat.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const config = { heartbeat: { interval: 40 } } as unknown as LoadedConfig;
const log = pino({ level: 'silent' }) as unknown as Logger;

// A fleet's heartbeats start at their cluster's cycle offset: 100 clusters' writes and answers
// no longer arrive on the event loop in one burst every interval.
test('a heartbeat with a first delay beats from then on, not before; stopped during the delay it never beats', async () => {
  let asked = 0;
  const delayed = new HeartbeatWriter({ config, log });
  delayed.start(() => {
    asked += 1;
    return undefined; // no writer known: nothing is written, the tick is counted
  }, 300);
  await sleep(200);
  assert.equal(asked, 0, 'no beat before the first delay');
  await sleep(400);
  assert.ok(asked >= 2, `beats every interval after the delay (${asked})`);
  await delayed.stop();

  let early = 0;
  const stopped = new HeartbeatWriter({ config, log });
  stopped.start(() => {
    early += 1;
    return undefined;
  }, 100);
  await stopped.stop();
  await sleep(300);
  assert.equal(early, 0, 'stopped before its first beat: none');
});
