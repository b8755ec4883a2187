/**
 * Hooks: the runner (argv without a shell, context in the environment and on stdin, timeout that
 * kills the process group, bounded output) and the engine's use of them (a failing pre_switchover
 * aborts with nothing changed, pre_failover aborts only when configured, post hooks and state
 * changes are journalled without holding the engine).
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Hooks, runHook, type HookContext } from '../../src/hooks/hooks.js';
import { MemoryJournal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log.js';
import { holderOf } from '../../src/engine/roles.js';
import { harness, testConfig } from './engine-fakes.js';

function scratch(t: import('node:test').TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-hooks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function script(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

const context: HookContext = {
  cluster: 'prod',
  event: 'post_failover',
  role: 'writer',
  old_writer: 'db1',
  new_writer: 'db2',
  reason: "db1 is dead; it's $(not) expanded",
};

test('a hook gets the context in SWITCHYARD_* variables and as JSON on stdin, and nothing secret', async (t) => {
  const dir = scratch(t);
  process.env.SWITCHYARD_TOKEN = 'must-not-leak';
  t.after(() => delete process.env.SWITCHYARD_TOKEN);
  const hook = script(dir, 'hook.sh', `env > "$1/env"; cat > "$1/stdin"; echo done`);
  const result = await runHook([hook, dir], context, 10_000);
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, 'done\n');
  const env = Object.fromEntries(
    readFileSync(join(dir, 'env'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  assert.equal(env.SWITCHYARD_CLUSTER, 'prod');
  assert.equal(env.SWITCHYARD_EVENT, 'post_failover');
  assert.equal(env.SWITCHYARD_OLD_WRITER, 'db1');
  assert.equal(env.SWITCHYARD_NEW_WRITER, 'db2');
  assert.equal(env.SWITCHYARD_ROLE, 'writer');
  assert.equal(env.SWITCHYARD_REASON, "db1 is dead; it's $(not) expanded");
  assert.equal(env.SWITCHYARD_TOKEN, undefined, "the daemon's own environment is not passed on");
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'stdin'), 'utf8')), context);
});

test('a hook that overruns its timeout is killed with everything it started', async (t) => {
  const dir = scratch(t);
  const hook = script(dir, 'slow.sh', `sleep 60 & echo $! > "$1/child"; sleep 60`);
  const result = await runHook([hook, dir], context, 300);
  assert.equal(result.ok, false);
  assert.equal(result.timedOut, true);
  const child = Number(readFileSync(join(dir, 'child'), 'utf8'));
  // Gone, or a zombie waiting for a reaper (its parent, the hook, was killed too).
  const running = () => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${child}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  let alive = running();
  for (let i = 0; i < 50 && alive; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    alive = running();
  }
  assert.equal(alive, false, 'the background child of the hook was killed too');
});

test('exit status, stderr excerpt, a program that cannot start, bounded output', async (t) => {
  const dir = scratch(t);
  const failing = await runHook(
    [script(dir, 'fail.sh', 'echo "app still has writers" >&2; exit 3')],
    context,
    10_000,
  );
  assert.equal(failing.ok, false);
  assert.equal(failing.exitCode, 3);
  assert.equal(failing.stderr, 'app still has writers\n');
  const missing = await runHook([join(dir, 'nope')], context, 10_000);
  assert.equal(missing.ok, false);
  assert.match(missing.error ?? '', /ENOENT/);
  const noisy = await runHook(
    [script(dir, 'noisy.sh', 'head -c 100000 /dev/zero | tr "\\0" x')],
    context,
    10_000,
  );
  assert.equal(noisy.ok, true);
  assert.ok(noisy.stdout.length < 4200, `kept ${noisy.stdout.length} characters`);
  assert.match(noisy.stdout, /\.\.\. \(95904 more bytes\)$/);
  assert.equal(existsSync(join(dir, 'nope')), false);
});

test('every run is journalled before and after as hook.run', async () => {
  const journal = new MemoryJournal();
  const hooks = new Hooks({
    config: { post_failover: ['/bin/true'], timeout: 10_000, pre_failover_aborts: false },
    journal,
    log: silentLogger,
  });
  assert.equal(await hooks.run({ ...context, event: 'pre_failover' }), undefined);
  hooks.fire(context);
  await hooks.settled();
  const entries = journal.entries.filter((entry) => entry.event === 'hook.run');
  assert.deepEqual(
    entries.map((entry) => [entry.phase, entry.outcome, entry.host]),
    [
      ['before', undefined, 'db2'],
      ['after', 'ok', 'db2'],
    ],
  );
  assert.equal(entries[0]?.action, entries[1]?.action);
  assert.deepEqual(entries[0]?.inputs?.argv, ['/bin/true']);
});

const failingHook = ['sh', '-c', 'echo "cannot drain the app" >&2; exit 4'];

test('a failing pre_switchover hook refuses the move before anything changed', async () => {
  const h = harness({ config: testConfig({ hooks: { pre_switchover: failingHook } }) });
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  const result = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(result.ok, false);
  assert.match(
    result.detail,
    /pre_switchover hook \(sh -c .*\) failed: exit 4; stderr: cannot drain the app/,
  );
  assert.deepEqual(h.sim.calls, [], 'nothing was touched');
  assert.equal(holderOf(h.engine.snapshot().roles, 'writer'), 'db1');
  const events = h.events();
  assert.ok(events.includes('before:hook.run:db2'));
  assert.ok(events.includes('after:hook.run:db2:failed'));
  assert.ok(events.includes('refused:switchover.refused:db2'));
});

test('a passing pre_switchover hook lets the move run; post_switchover is journalled after it', async (t) => {
  const dir = scratch(t);
  const post = script(dir, 'post.sh', `cat > "${dir}/post"`);
  const h = harness({
    config: testConfig({ hooks: { pre_switchover: ['/bin/true'], post_switchover: [post] } }),
  });
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  const result = await h.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(result.ok, true, result.detail);
  const core = (h.engine as unknown as { core: { hooks: Hooks } }).core;
  await core.hooks.settled();
  const received = JSON.parse(readFileSync(join(dir, 'post'), 'utf8')) as HookContext;
  assert.equal(received.event, 'post_switchover');
  assert.equal(received.old_writer, 'db1');
  assert.equal(received.new_writer, 'db2');
  const events = h.events();
  assert.ok(
    events.indexOf('after:hook.run:db2:ok') < events.indexOf('before:mysql.fence:db1'),
    'the pre hook ran before the fence',
  );
});

const down = { db1: 'HARD_OFFLINE', db2: 'REPLICATION_FAIL', db3: 'REPLICATION_FAIL' } as const;

test('a failing pre_failover hook is journalled; it stops the failover only with pre_failover_aborts', async () => {
  const journalled = harness({ config: testConfig({ hooks: { pre_failover: failingHook } }) });
  await journalled.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  journalled.sim.killHost('db1');
  const state = await journalled.cycle(down);
  assert.equal(holderOf(state.roles, 'writer'), 'db2', 'the failover went on');
  assert.ok(journalled.events().includes('after:hook.run:db2:failed'));

  const aborting = harness({
    config: testConfig({ hooks: { pre_failover: failingHook, pre_failover_aborts: true } }),
  });
  await aborting.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  aborting.sim.killHost('db1');
  const held = await aborting.cycle(down);
  assert.equal(holderOf(held.roles, 'writer'), 'db1', 'no promotion');
  assert.deepEqual(aborting.sim.writable(), []);
  const refusal = aborting.journal.entries.find((entry) => entry.event === 'failover.refused');
  assert.match(refusal?.reason ?? '', /pre_failover hook .* failed: exit 4/);
});

test('on_state_change runs for each host state change, with the host and both states', async (t) => {
  const dir = scratch(t);
  const hook = script(
    dir,
    'state.sh',
    `echo "$SWITCHYARD_HOST $SWITCHYARD_PREVIOUS_STATE $SWITCHYARD_STATE" >> "${dir}/states"`,
  );
  const h = harness({ config: testConfig({ hooks: { on_state_change: [hook] } }) });
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'ONLINE' });
  await h.cycle({ db1: 'ONLINE', db2: 'ONLINE', db3: 'REPLICATION_DELAY' });
  const core = (h.engine as unknown as { core: { hooks: Hooks } }).core;
  await core.hooks.settled();
  assert.equal(readFileSync(join(dir, 'states'), 'utf8'), 'db3 ONLINE REPLICATION_DELAY\n');
});
