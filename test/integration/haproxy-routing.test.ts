/**
 * Routing through real HAProxy processes driven by the manager over their runtime API: one on a
 * unix admin socket, one on the TCP form, and one configured instance that does not exist. The
 * state is proved by the test's own `show servers state` and by connections through HAProxy's
 * writer frontend, never by the push's return value.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderStatus } from '../../src/cli/commands/show.js';
import { openConnection } from '../../src/mysql/connect.js';
import { findFreePortRange } from '../../src/sandbox/ports.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { HAPROXY, serversState, startHaproxy } from '../support/haproxy.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

/** The server_id a new connection through HAProxy's frontend reaches, or undefined. */
async function serverIdThrough(
  port: number,
  credentials: { user: string; password: string },
): Promise<number | undefined> {
  const connection = await openConnection({
    host: '127.0.0.1',
    port,
    user: credentials.user,
    password: credentials.password,
    connectTimeoutMs: 500,
  }).catch(() => undefined);
  if (!connection) return undefined;
  try {
    const [rows] = await connection.query('SELECT @@server_id AS id');
    return Number((rows as Array<{ id: number }>)[0]?.id);
  } catch {
    return undefined;
  } finally {
    connection.destroy();
  }
}

test('HAProxy runtime API: the manager declares the roles, a failover moves the writer, a hand change is set back, a missing instance blocks nothing', async (t) => {
  if (!requireBinaries(t, [...MARIADB, ...HAPROXY])) return;
  const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
  const [frontendA, frontendB, adminB] = await Promise.all([
    findFreePortRange(1),
    findFreePortRange(1),
    findFreePortRange(1),
  ]);
  assert.ok(new Set([frontendA, frontendB, adminB]).size === 3);
  const port = (host: string) => sandbox.instance(host).port;
  // As docs/routing.md: the writer backend's servers start in maint (no writes anywhere until the
  // manager names the writer), the readers' ready.
  const sections = (frontend: number) => `frontend writes
  bind 127.0.0.1:${frontend}
  default_backend mysql_writer
backend mysql_writer
  server db1 127.0.0.1:${port('db1')} disabled
  server db2 127.0.0.1:${port('db2')} disabled
backend mysql_readers
  balance leastconn
  server db1 127.0.0.1:${port('db1')}
  server db2 127.0.0.1:${port('db2')}
  server db3 127.0.0.1:${port('db3')}
`;
  const socketA = join(sandbox.dir, 'haproxy-a.sock');
  const a = await startHaproxy(
    t,
    sandbox.dir,
    'haproxy-a',
    { socket: socketA },
    sections(frontendA),
  );
  const b = await startHaproxy(
    t,
    sandbox.dir,
    'haproxy-b',
    { tcpPort: adminB },
    sections(frontendB),
  );
  const proxies = [a, b];
  const backends = { writer: 'mysql_writer', reader: 'mysql_readers' };
  const config = writeTestConfig(sandbox, 'haproxy.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
    raw.listen = `127.0.0.1:${sandbox.listenPort}`;
    raw.routing = {
      haproxy: [
        { name: 'a', socket: a.admin, backends, timeout: '500ms' },
        { name: 'b', address: b.admin, backends, timeout: '500ms' },
        // Configured but never started: it must not hold anything.
        {
          name: 'gone',
          socket: join(sandbox.dir, 'no-such-haproxy.sock'),
          backends,
          timeout: '500ms',
        },
      ],
    };
  });
  const credentials = {
    user: config.mysql.user,
    password: readFileSync(join(sandbox.dir, 'mysql.pass'), 'utf8').trim(),
  };
  const { daemon } = await startDaemon(t, config);
  const journal = () => daemon.journal.read();

  // 1. From a fresh start: the writer's server ready, the other maint, at both HAProxys.
  for (const proxy of proxies)
    await waitFor(
      `db1 ready and db2 maint in ${proxy.admin}'s writer backend`,
      async () => {
        const state = await serversState(proxy.admin, 'mysql_writer');
        return state.db1 === 'ready' && state.db2 === 'maint';
      },
      15_000,
    );
  for (const proxy of proxies)
    assert.deepEqual(await serversState(proxy.admin, 'mysql_readers'), {
      db1: 'ready',
      db2: 'ready',
      db3: 'ready',
    });
  for (const frontend of [frontendA, frontendB])
    assert.equal(await serverIdThrough(frontend, credentials), 1, 'writes go to db1');
  assert.ok(
    journal().some(
      (entry) => entry.event === 'route.unreachable' && /HAProxy gone/.test(entry.reason ?? ''),
    ),
    'the missing instance is journalled',
  );

  // 2. Changed by hand behind the manager: set back within a few cycles.
  const hand = await new Promise<string>((resolve, reject) => {
    import('node:net').then(({ connect }) => {
      const socket = connect(socketA);
      let answer = '';
      socket.on('connect', () => socket.write('set server mysql_writer/db2 state ready\n'));
      socket.on('data', (chunk) => (answer += String(chunk)));
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
    }, reject);
  });
  assert.equal(hand.trim(), '');
  assert.equal((await serversState(a.admin, 'mysql_writer')).db2, 'ready');
  await waitFor(
    'db2 back to maint at haproxy a',
    async () => (await serversState(a.admin, 'mysql_writer')).db2 === 'maint',
    10_000,
  );

  // 3. kill -9 of the writer: failover to db2, and both HAProxys follow within the decision.
  await sandbox.instance('db1').kill();
  await waitFor(
    'the failover to db2',
    async () => Object.values(daemon.status().roles.writer ?? {}).includes('db2'),
    30_000,
  );
  // The status names db2 from the moment the role moved; the decision ends a little later.
  const done = await waitFor('failover.done', async () =>
    journal().find((entry) => entry.event === 'failover.done'),
  );
  for (const proxy of proxies) {
    const state = await serversState(proxy.admin, 'mysql_writer');
    assert.deepEqual(
      state,
      { db1: 'maint', db2: 'ready' },
      `${proxy.admin} right after the failover`,
    );
  }
  for (const frontend of [frontendA, frontendB])
    assert.equal(
      await waitFor(
        'writes through HAProxy to reach db2',
        () => serverIdThrough(frontend, credentials),
        5000,
      ),
      2,
    );
  // Pushed inside the decision: the pushes to db2 ready are journalled before failover.done.
  const pushes = journal().filter(
    (entry) =>
      entry.event === 'route.push' &&
      entry.phase === 'after' &&
      entry.outcome === 'ok' &&
      entry.host === 'db2' &&
      entry.inputs?.state === 'ready' &&
      entry.inputs?.backend === 'mysql_writer',
  );
  assert.deepEqual(pushes.map((entry) => entry.inputs?.proxy).sort(), ['a', 'b']);
  assert.ok(
    pushes.every((entry) => entry.seq < done.seq),
    'routes pushed before failover.done',
  );
  const metrics = await daemon.metrics.registry.metrics();
  assert.match(metrics, /switchyard_route_proxy_up\{[^}]*proxy="gone"[^}]*\} 0/);
  assert.match(metrics, /switchyard_route_proxy_up\{[^}]*proxy="a"[^}]*\} 1/);
  assert.match(
    metrics,
    /switchyard_route_state\{[^}]*proxy="b",backend="mysql_writer",host="db2",state="ready"[^}]*\} 1/,
  );
  // 4. `switchyard show`: what each HAProxy reported at its last round.
  const shown = await waitFor('show to give the routes after the failover', async () => {
    const text = renderStatus(daemon.status());
    return /haproxy a mysql_writer: db1 - \(maint\), db2 ROUTED \(ready\)/.test(text) && text;
  });
  assert.match(shown, /haproxy b mysql_writer: db1 - \(maint\), db2 ROUTED \(ready\)/);
  assert.match(shown, /haproxy gone: UNREACHABLE/);
});
