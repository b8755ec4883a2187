import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPlan, StepRecorder } from '../../src/actuator/recorder.js';
import { RefusedError } from '../../src/actuator/types.js';
import { SwitchyardMetrics } from '../../src/exporter/metrics.js';
import { MemoryJournal } from '../../src/journal/journal.js';

const step = { action: 'mysql.read_only_on', host: 'db1', description: 'SET GLOBAL read_only=ON' };

test('a step is journaled before and after, counted, and remembered', async () => {
  const journal = new MemoryJournal();
  const metrics = new SwitchyardMetrics('t', { processMetrics: false });
  const recorder = new StepRecorder({ dryRun: false, journal, metrics });
  const order: string[] = [];
  const result = await recorder.step(
    step,
    'planned',
    async () => {
      order.push(`work after ${journal.entries.length} entr(y/ies)`);
      return 'done';
    },
    (value) => `result ${value}`,
  );
  assert.equal(result, 'done');
  assert.deepEqual(
    order,
    ['work after 1 entr(y/ies)'],
    'the "before" entry exists before the work runs',
  );
  assert.deepEqual(
    journal.entries.map((entry) => [entry.phase, entry.outcome, entry.detail]),
    [
      ['before', undefined, undefined],
      ['after', 'ok', 'result done'],
    ],
  );
  assert.equal(
    journal.entries[0]?.action,
    journal.entries[1]?.action,
    'before and after share an action id',
  );
  await assert.rejects(
    recorder.step(step, undefined, async () => {
      throw new RefusedError('no');
    }),
    /no/,
  );
  assert.deepEqual(journal.entries.at(-1)?.outcome, 'failed');
  recorder.refused(step, 'errant GTIDs 0-3-5');
  assert.equal(journal.entries.at(-1)?.phase, 'refused');
  assert.equal(journal.entries.at(-1)?.reason, 'errant GTIDs 0-3-5');
  const text = (await metrics.render()).body;
  assert.match(
    text,
    /switchyard_actions_total\{action="mysql.read_only_on",result="ok",cluster="t"\} 1/,
  );
  assert.match(
    text,
    /switchyard_actions_total\{action="mysql.read_only_on",result="refused",cluster="t"\} 2/,
  );
  assert.equal(recorder.steps.length, 2);
});

test('dry-run returns the planned value without running, and the plan prints', async () => {
  const journal = new MemoryJournal();
  const recorder = new StepRecorder({ dryRun: true, journal });
  let ran = false;
  const result = await recorder.step(step, 'planned', async () => {
    ran = true;
    return 'done';
  });
  assert.equal(result, 'planned');
  assert.equal(ran, false);
  assert.deepEqual(
    journal.entries.map((entry) => [entry.phase, entry.outcome]),
    [['note', 'dry-run']],
  );
  assert.equal(formatPlan(recorder.steps), '1. db1: mysql.read_only_on: SET GLOBAL read_only=ON');
  assert.equal(formatPlan([]), '(nothing to do)');
});
