/**
 * A real cluster whose roles have no IPs, with hooks: a failing pre_switchover hook aborts a real
 * switchover with nothing changed, kill -9 of the writer fails over with no VIP to move, the
 * post_failover hook receives the context, and a hook that overruns its timeout is killed.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

function script(path: string, body: string): string {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

test('no ips: a failing pre_switchover hook aborts the switchover; kill -9 fails over and runs post_failover', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const dir = sandbox.dir;
  const blocker = join(dir, 'app-cannot-drain');
  writeFileSync(blocker, '');
  const pre = script(
    join(dir, 'pre-switchover.sh'),
    `cat > "${dir}/pre.json"
if [ -e "${blocker}" ]; then echo "app still has 3 writers" >&2; exit 7; fi`,
  );
  const post = script(
    join(dir, 'post-failover.sh'),
    `cat > "${dir}/post.json"; env | grep '^SWITCHYARD_' | sort > "${dir}/post.env"`,
  );
  const slow = script(join(dir, 'state-change.sh'), 'sleep 30');
  const config = writeTestConfig(sandbox, 'no-vips.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
    raw.listen = `127.0.0.1:${sandbox.listenPort}`;
    for (const role of Object.values(raw.roles as Record<string, { ips?: string[] }>))
      delete role.ips;
    raw.hooks = {
      pre_switchover: [pre],
      post_failover: [post],
      on_state_change: [slow],
      timeout: '1s',
    };
  });
  const db1 = sandbox.instance('db1');
  const db2 = sandbox.instance('db2');
  const readOnly = async (instance: typeof db1) =>
    Number((await instance.sql('SELECT @@read_only AS ro'))[0]?.ro);
  const { daemon } = await startDaemon(t, config);
  await waitFor(
    'db1 to hold the writer role',
    async () => daemon.status().roles.writer?.['-'] === 'db1',
  );
  assert.deepEqual(daemon.status().hosts.find((host) => host.name === 'db3')?.roles, [
    { role: 'reader', ip: '-' },
  ]);

  // 1. The hook says the application cannot drain: refused, with its reason; nothing changed.
  const refused = await daemon.engine.moveRole('writer', 'db2', { force: false });
  assert.equal(refused.ok, false);
  assert.match(
    refused.detail,
    /pre_switchover hook .* failed: exit 7; stderr: app still has 3 writers/,
  );
  assert.deepEqual([await readOnly(db1), await readOnly(db2)], [0, 1], 'nothing changed');
  assert.equal(daemon.status().roles.writer?.['-'], 'db1');
  const preContext = JSON.parse(readFileSync(join(dir, 'pre.json'), 'utf8'));
  assert.equal(preContext.event, 'pre_switchover');
  assert.equal(preContext.old_writer, 'db1');
  assert.equal(preContext.new_writer, 'db2');
  const journal = () => daemon.journal.read();
  assert.ok(
    journal().some(
      (entry) => entry.event === 'switchover.refused' && /exit 7/.test(entry.reason ?? ''),
    ),
  );

  // 2. kill -9 of the writer: failover with no VIP to move; post_failover gets the context.
  rmSync(blocker);
  await db1.kill();
  await waitFor(
    'the failover to db2',
    async () => daemon.status().roles.writer?.['-'] === 'db2' && (await readOnly(db2)) === 0,
    30_000,
  );
  await waitFor('the post_failover hook', async () => existsSync(join(dir, 'post.env')));
  await waitFor('post.env written', async () =>
    readFileSync(join(dir, 'post.env'), 'utf8').includes('SWITCHYARD_NEW_WRITER'),
  );
  const env = readFileSync(join(dir, 'post.env'), 'utf8');
  assert.match(env, /^SWITCHYARD_CLUSTER=sandbox$/m);
  assert.match(env, /^SWITCHYARD_EVENT=post_failover$/m);
  assert.match(env, /^SWITCHYARD_OLD_WRITER=db1$/m);
  assert.match(env, /^SWITCHYARD_NEW_WRITER=db2$/m);
  assert.equal(JSON.parse(readFileSync(join(dir, 'post.json'), 'utf8')).new_writer, 'db2');

  // 3. The state-change hook (db1 went down) overran its 1 s timeout and was killed, journalled.
  const timedOut = await waitFor('a timed-out on_state_change run', async () =>
    journal().find(
      (entry) =>
        entry.event === 'hook.run' &&
        entry.phase === 'after' &&
        /^on_state_change: timed out and was killed/.test(entry.detail ?? ''),
    ),
  );
  assert.equal(timedOut.outcome, 'failed');
});
