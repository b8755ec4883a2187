import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Repeating } from '../../src/agent/repeating.js';

/** A hand-driven clock and timer queue: runs fire only when the test says so. */
function manualTime() {
  let now = 0;
  const pending: Array<{ run: () => void; ms: number; cancelled: boolean }> = [];
  return {
    now: () => now,
    advance: (ms: number) => (now += ms),
    delay: (run: () => void, ms: number) => {
      const entry = { run, ms, cancelled: false };
      pending.push(entry);
      return () => {
        entry.cancelled = true;
      };
    },
    /** The delays asked for and not cancelled, oldest first. */
    waiting: () => pending.filter((entry) => !entry.cancelled).map((entry) => entry.ms),
    fire: () => {
      const entry = pending.find((item) => !item.cancelled);
      assert.ok(entry, 'a run is waiting');
      entry.cancelled = true;
      entry.run();
    },
  };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

test('a run never overlaps the previous one, and starting twice schedules once', async () => {
  const time = manualTime();
  let runs = 0;
  let release = deferred();
  const task = new Repeating(
    async () => {
      runs += 1;
      await release.promise;
    },
    { intervalMs: () => 1000, now: time.now, delay: time.delay },
  );
  task.start();
  task.start();
  assert.deepEqual(time.waiting(), [0], 'one immediate run, not two');
  time.fire();
  assert.equal(task.state(), 'running');
  task.start(); // while running: no second chain
  assert.deepEqual(time.waiting(), []);
  time.advance(300);
  release.resolve();
  await settle();
  assert.equal(runs, 1);
  assert.equal(task.state(), 'waiting');
  assert.deepEqual(time.waiting(), [700], 'the interval counts from the start of the run');
  release = deferred();
  time.fire();
  time.advance(2500); // a run slower than the interval: the next is due at once
  release.resolve();
  await settle();
  assert.equal(runs, 2);
  assert.deepEqual(time.waiting(), [0]);
  task.stop();
});

test('stop cancels the waiting run, and a run under way schedules none', async () => {
  const time = manualTime();
  const release = deferred();
  const task = new Repeating(() => release.promise, {
    intervalMs: () => 500,
    now: time.now,
    delay: time.delay,
  });
  task.start();
  task.stop();
  assert.deepEqual(time.waiting(), []);
  assert.equal(task.state(), 'stopped');
  task.start();
  time.fire();
  task.stop();
  release.resolve();
  await settle();
  assert.deepEqual(time.waiting(), [], 'stopped during the run: nothing scheduled');
  assert.equal(task.state(), 'stopped');
  // Started again after a stop: runs again.
  task.start();
  assert.deepEqual(time.waiting(), [0]);
  task.stop();
});
