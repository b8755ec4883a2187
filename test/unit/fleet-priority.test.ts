import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FleetPriority } from '../../src/daemon/fleet-priority.js';

/** A clock the test moves; FleetPriority's waits are real timers, bounded by holdMs. */
function clock() {
  let at = 1_000_000;
  return { now: () => at, advance: (ms: number) => (at += ms) };
}

const settled = async (promise: Promise<unknown>) => {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
};

test('without an urgent cluster a cycle starts at once', async () => {
  const priority = new FleetPriority(1000);
  assert.equal(await priority.yieldTo('beta'), 0);
  priority.begin('alpha');
  assert.equal(await priority.yieldTo('alpha'), 0, 'the urgent cluster itself never waits');
});

test("the others' cycles wait while a cluster has lost its writer, and go when it is decided", async () => {
  const time = clock();
  const priority = new FleetPriority(60_000, time.now);
  priority.begin('alpha');
  assert.equal(priority.othersUrgent('beta'), true);
  assert.equal(priority.othersUrgent('alpha'), false);
  const beta = priority.yieldTo('beta');
  const gamma = priority.yieldTo('gamma');
  assert.equal(await settled(beta), false, 'beta waits while alpha is urgent');
  time.advance(40);
  priority.end('alpha');
  assert.equal(await beta, 40);
  assert.equal(await gamma, 40);
  assert.equal(priority.othersUrgent('beta'), false);
});

test('two clusters failing at once both go first; the others wait for both', async () => {
  const time = clock();
  const priority = new FleetPriority(60_000, time.now);
  priority.begin('alpha');
  const beta = priority.yieldTo('beta');
  const gamma = priority.yieldTo('gamma');
  priority.begin('beta');
  assert.equal(await settled(beta), true, 'beta became urgent itself: it stops waiting');
  priority.end('alpha');
  assert.equal(await settled(gamma), false, 'gamma still waits for beta');
  priority.end('beta');
  assert.equal(await settled(gamma), true);
});

test('an urgency never holds the others longer than holdMs', async () => {
  const priority = new FleetPriority(30);
  priority.begin('alpha');
  const started = Date.now();
  const waited = await priority.yieldTo('beta');
  assert.ok(waited >= 25 && Date.now() - started < 1000, `waited ${waited} ms`);
  assert.equal(priority.othersUrgent('beta'), false, 'the urgency expired');
  assert.equal(await priority.yieldTo('beta'), 0, 'and holds nobody after it expired');
});

test('a cluster that keeps beginning without ending holds nobody beyond holdMs from its first begin', async () => {
  const time = clock();
  const priority = new FleetPriority(1000, time.now);
  priority.begin('alpha');
  time.advance(600);
  priority.begin('alpha');
  time.advance(500);
  assert.equal(priority.othersUrgent('beta'), false, 'the second begin did not extend the first');
});

test('a cluster whose interval is shorter than the hold waits at most its own interval', async () => {
  const priority = new FleetPriority(60_000);
  priority.begin('alpha');
  const started = Date.now();
  const waited = await priority.yieldTo('beta', 20);
  assert.ok(waited >= 15 && Date.now() - started < 1000, `waited ${waited} ms`);
  assert.equal(priority.othersUrgent('beta'), true, 'alpha is still urgent for the others');
});
