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

test("a failover does not wait for each step's save, only for the record on disk before the promotion", async () => {
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
  // The steps before the promotion went on while their records were being written...
  assert.ok(
    at('stopReplication:db2') < at('saved:catching_up'),
    `the first record was still being saved: ${calls.join(', ')}`,
  );
  // ...and the promotion waited until the record with its own step was on disk. The records
  // asked for while the first was being written (repointing, fencing, catching up, promoting)
  // went into one write, of the state as it was when that write began.
  const promoted = at('setReadOnly:db2:false');
  assert.ok(at('saved:promoting') < promoted, `on disk before the promotion: ${calls.join(', ')}`);
  const savesBefore = calls.slice(0, promoted).filter((call) => call.startsWith('save:'));
  assert.deepEqual(savesBefore, ['save:catching_up', 'save:promoting']);
  assert.equal(store.maxInFlight, 1, 'the store gets one save at a time, in order');
  assert.equal(store.saved?.operation, undefined, 'the finished move is saved without its record');
});

test('a record that cannot be saved stops the failover before the promotion, and says why', async () => {
  const store = new SlowStore(5);
  store.failStep = 'promoting';
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
