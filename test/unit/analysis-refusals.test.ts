/**
 * Every refusal the engine journals has a situation or a reason that `switchyard why` shows:
 * the sources are read for `phase: 'refused'` events, `refuse('event', ...)` calls and lasting
 * `condition('key', ...)` keys, and each must be listed in src/analysis/refusals.ts. A refusal
 * added without a place in `why` fails here.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { conditionCoverage, REFUSED_EVENTS } from '../../src/analysis/refusals.js';
import { SITUATION_NAMES } from '../../src/analysis/types.js';

const SRC = join(import.meta.dirname, '../../src');

function sources(dir: string): Array<{ file: string; text: string }> {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts')
      ? [{ file: path.slice(SRC.length + 1), text: readFileSync(path, 'utf8') }]
      : [];
  });
}

/** Refusals whose event name is not a literal at the refusal: where it comes from instead. */
const DYNAMIC = new Map([
  // EngineCore.refuse(event, ...): its callers pass literals, found by the refuse( pattern.
  ['engine/core.ts', 'refuse(event, ...)'],
  // The actuator's refusal of one step (an agent said no): a failed step of a plan the journal
  // shows; the engine's refusal that follows it is one of the events below.
  ['actuator/recorder.ts', 'step.action'],
]);

/** The object literal around `index`: from its unmatched `{` to the matching `}`. */
function enclosingObject(text: string, index: number): string {
  let depth = 0;
  let start = index;
  for (; start > 0; start -= 1) {
    const char = text[start];
    if (char === '}') depth += 1;
    else if (char === '{') {
      if (depth === 0) break;
      depth -= 1;
    }
  }
  depth = 0;
  let end = start;
  for (; end < text.length; end += 1) {
    const char = text[end];
    if (char === '{') depth += 1;
    else if (char === '}' && --depth === 0) break;
  }
  return text.slice(start, end + 1);
}

function journaledRefusals(): {
  events: Set<string>;
  conditions: Set<string>;
  dynamic: Set<string>;
} {
  const events = new Set<string>();
  const conditions = new Set<string>();
  const dynamic = new Set<string>();
  for (const { file, text } of sources(SRC)) {
    if (file.startsWith('analysis/')) continue;
    for (const match of text.matchAll(/phase: 'refused'/g)) {
      const literal = enclosingObject(text, match.index);
      const event = /event: '([^']+)'/.exec(literal);
      if (event) events.add(event[1] as string);
      else if (/\bevent(,|: [a-z])/.test(literal)) dynamic.add(file);
      else assert.fail(`${file}: a refusal whose event is not found`);
    }
    for (const match of text.matchAll(/\.refuse\(\s*'([^']+)'/g)) events.add(match[1] as string);
    for (const match of text.matchAll(/\bcondition\(\s*'([^']+)'/g))
      conditions.add(match[1] as string);
    for (const match of text.matchAll(/\bcondition\(\s*`([^`$]+)\$\{/g))
      conditions.add(match[1] as string);
    for (const match of text.matchAll(/\.condition\(\s*(key)\b/g)) {
      // follow-writer.ts: const key = `replica.follow:${...}`
      const declared = /const key = `([^`$]+)\$\{/.exec(text);
      assert.ok(declared, `${file}: condition(${match[1]}) with no key template`);
      conditions.add(declared[1] as string);
    }
  }
  return { events, conditions, dynamic };
}

test('the sources are read: the refusals known today are found', () => {
  const { events, conditions } = journaledRefusals();
  for (const known of [
    'failover.refused',
    'writer.none',
    'writer.split_brain',
    'switchover.refused',
  ])
    assert.ok(events.has(known), `${known} not found: the scan is broken`);
  for (const known of ['failover.withheld', 'writer.stuck', 'unassigned:', 'replica.follow:'])
    assert.ok(conditions.has(known), `${known} not found: the scan is broken`);
});

test('every refusal the engine journals is shown by why', () => {
  const { events, dynamic } = journaledRefusals();
  const missing = [...events].filter((event) => !REFUSED_EVENTS[event]);
  assert.deepEqual(missing, [], `refusals why does not know: ${missing.join(', ')}`);
  assert.deepEqual([...dynamic].sort(), [...DYNAMIC.keys()].sort());
});

test('every lasting condition the engine keeps is shown by why', () => {
  const { conditions } = journaledRefusals();
  const missing = [...conditions].filter((key) => !conditionCoverage(key));
  assert.deepEqual(missing, [], `conditions why does not know: ${missing.join(', ')}`);
});

test('what the coverage names exists: situations and blocker kinds', () => {
  const blockerKinds = new Set([
    'evidence_missing',
    'evidence_contradicts',
    'lease_wait',
    'mode',
    'not_leader',
    'alerts_only',
    'maintenance',
    'held_candidate',
    'errant_host',
    'no_candidate',
    'backoff',
    'operation_in_progress',
    'refusal',
    'command_answer',
  ]);
  for (const [event, coverage] of Object.entries(REFUSED_EVENTS))
    for (const shown of coverage.shownAs)
      assert.ok(
        (SITUATION_NAMES as readonly string[]).includes(shown) || blockerKinds.has(shown),
        `${event}: ${shown} is neither a situation nor a blocker kind`,
      );
});
