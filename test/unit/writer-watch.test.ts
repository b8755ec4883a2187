import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { Connection } from '../../src/mysql/connect.js';
import { WriterWatch } from '../../src/monitor/writer-watch.js';

class FakeConnection extends EventEmitter {
  destroyed = false;
  destroy(): void {
    this.destroyed = true;
  }
}

function harness(failOpen: Set<string> = new Set()) {
  const opened: Array<{ host: string; connection: FakeConnection }> = [];
  const lost: string[] = [];
  const watch = new WriterWatch({
    open: async (host) => {
      if (failOpen.has(host)) throw new Error('connect ECONNREFUSED');
      const connection = new FakeConnection();
      opened.push({ host, connection });
      return connection as unknown as Connection;
    },
    onLost: (host, reason) => lost.push(`${host}: ${reason}`),
  });
  return { watch, opened, lost };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('the loss of an established connection to the writer is reported once, and the next watch reconnects', async () => {
  const { watch, opened, lost } = harness();
  watch.watch('db1');
  watch.watch('db1');
  await settle();
  assert.equal(opened.length, 1, 'one connection, however often watch() is called');
  assert.equal(watch.watching(), 'db1');
  opened[0]?.connection.emit('end');
  opened[0]?.connection.emit('error', new Error('read ECONNRESET'));
  assert.deepEqual(lost, ['db1: the server closed the connection']);
  assert.equal(watch.watching(), undefined);
  watch.watch('db1');
  await settle();
  assert.equal(opened.length, 2);
});

test('a connect that fails is not a loss: a refusing writer never turns into a loop of wakes', async () => {
  const { watch, opened, lost } = harness(new Set(['db1']));
  watch.watch('db1');
  await settle();
  watch.watch('db1');
  await settle();
  assert.equal(opened.length, 0);
  assert.deepEqual(lost, []);
});

test('a new writer replaces the watched one quietly; close() ends the watch without a report', async () => {
  const { watch, opened, lost } = harness();
  watch.watch('db1');
  await settle();
  watch.watch('db2');
  await settle();
  assert.equal(opened[0]?.connection.destroyed, true, 'the old writer is no longer watched');
  opened[0]?.connection.emit('end');
  assert.equal(watch.watching(), 'db2');
  await watch.close();
  opened[1]?.connection.emit('end');
  assert.deepEqual(lost, [], 'neither the replaced nor the closed connection counts as a loss');
  watch.watch('db3');
  await settle();
  assert.equal(opened.length, 2, 'nothing opens after close');
});

/** A connection whose pings are answered only while `answering` is true (a hung server: never). */
class PingableConnection extends FakeConnection {
  answering = true;
  pings = 0;
  private pending: Array<() => void> = [];
  ping(): Promise<void> {
    this.pings += 1;
    if (this.answering) return Promise.resolve();
    return new Promise((resolve) => this.pending.push(resolve));
  }
  resume(): void {
    this.answering = true;
    for (const resolve of this.pending.splice(0)) resolve();
  }
}

async function until(what: string, probe: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !probe(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(probe(), `gave up waiting for ${what}`);
}

test('a writer that stops answering pings on the idle connection (hung: nothing is closed) wakes the monitor once, not in a loop', async () => {
  const connection = new PingableConnection();
  const stalled: string[] = [];
  const lost: string[] = [];
  const watch = new WriterWatch({
    open: async () => connection as unknown as Connection,
    onLost: (host) => lost.push(host),
    ping: { everyMs: 5, stallMs: 5, onStalled: (host) => stalled.push(host) },
  });
  watch.watch('db1');
  await until('a few answered pings', () => connection.pings >= 3);
  assert.deepEqual(stalled, [], 'answered pings are no stall');
  connection.answering = false;
  await until('the stall report', () => stalled.length > 0);
  const pingsWhileHung = connection.pings;
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(stalled, ['db1'], 'one report for one unanswered ping');
  assert.equal(connection.pings, pingsWhileHung, 'no new ping while one is unanswered');
  assert.deepEqual(lost, [], 'a stall is not a loss: the connection stays');
  assert.equal(watch.watching(), 'db1');
  connection.resume();
  await until('pings again', () => connection.pings > pingsWhileHung);
  await watch.close();
  const after = connection.pings;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(connection.pings, after, 'no pings after close');
});
