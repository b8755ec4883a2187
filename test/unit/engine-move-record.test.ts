import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterState } from '../../src/domain/cluster-state.js';
import { MemoryStore, harness, type Harness } from './engine-fakes.js';

const down = { db1: 'HARD_OFFLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' } as const;

/**
 * A store whose saves take a while, as a state file's write and two fsyncs do on a busy disk;
 * each save and its end go into the sim's calls, beside the actions, so their order shows.
 */
class SlowStore extends MemoryStore {
  calls?: string[];
  inFlight = 0;
  maxInFlight = 0;
  failStep?: string;
  constructor(private readonly delayMs: number) {
    super();
  }
  override async save(state: ClusterState): Promise<void> {
    const step = state.operation?.step ?? 'none';
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.calls?.push(`save:${step}`);
    try {
      await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      if (step === this.failStep) throw new Error('ENOSPC: no space left on device');
      await super.save(state);
      this.calls?.push(`saved:${step}`);
    } finally {
      this.inFlight -= 1;
    }
  }
}

async function failingOver(store: SlowStore): Promise<Harness> {
  const h = harness({ store });
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  store.calls = h.sim.calls;
  h.sim.killHost('db1');
  return h;
}

test('a failover saves its record as it begins, and waits for it only before the promotion', async () => {
  const store = new SlowStore(30);
  const h = await failingOver(store);
  const state = await h.cycle(down);

  assert.deepEqual(h.sim.writable(), ['db2']);
  assert.equal(state.operation, undefined);
  const calls = h.sim.calls.filter((call) => !call.includes('127.0.1.10') || call.includes('.100'));
  const at = (call: string) => {
    const index = calls.indexOf(call);
    assert.ok(index >= 0, `${call} in ${calls.join(', ')}`);
    return index;
  };
  // The record went to disk as the move began, while its first steps ran...
  assert.ok(
    at('stopReplication:db2') < at('saved:deciding'),
    `the steps did not wait for the record: ${calls.join(', ')}`,
  );
  // ...the promotion waited for it, not for the saves of the later steps' names (asked for while
  // it was written, they went into one write of the state as it was when that write began).
  const promoted = at('setReadOnly:db2:false');
  assert.ok(at('saved:deciding') < promoted, `on disk before the promotion: ${calls.join(', ')}`);
  assert.ok(promoted < at('saved:promoting'), `no wait for the step's name: ${calls.join(', ')}`);
  const savesBefore = calls.slice(0, promoted).filter((call) => call.startsWith('save:'));
  assert.equal(savesBefore[0], 'save:deciding');
  assert.ok(savesBefore.length <= 2, `five records, at most two writes: ${savesBefore.join(', ')}`);
  assert.equal(store.maxInFlight, 1, 'the store gets one save at a time, in order');
  assert.equal(store.saved?.operation, undefined, 'the finished move is saved without its record');
});

test('a record that cannot be saved stops the failover before the promotion, and says why', async () => {
  const store = new SlowStore(5);
  store.failStep = 'deciding';
  const h = await failingOver(store);
  await h.cycle(down);

  assert.deepEqual(h.sim.writable(), [], 'nothing promoted without its record on disk');
  assert.ok(!h.sim.calls.includes('setReadOnly:db2:false'));
  const refusal = h.journal.entries.find((entry) => entry.event === 'failover.refused');
  assert.match(
    refusal?.reason ?? '',
    /record could not be saved before promote: ENOSPC/,
    JSON.stringify(refusal),
  );
  assert.equal(h.engine.snapshot().operation, undefined, 'the move is cleared');
});
