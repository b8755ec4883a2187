/**
 * A hung server (issue 22, item 3) on loopback: mariadbd stopped with SIGSTOP. The kernel still
 * accepts TCP connections into the listen backlog, but no greeting ever comes. The manager's check
 * and the agent's probe must both fail within the connect timeout, and neither may call that a
 * refusal (a refused port is evidence on its own; a hung server needs the other hosts to agree).
 * And a server that greets and logs in but then answers no query fails the check within the
 * connect timeout too.
 */
import assert from 'node:assert/strict';
import type { AddressInfo, Server } from 'node:net';
import { test } from 'node:test';
import mysql from 'mysql2';
import { readSecret } from '../../src/config/secrets.js';
import { probeMysqlPort } from '../../src/agent/writer-probe.js';
import { observeHost, type CheckTarget } from '../../src/monitor/checks.js';
import { WriterWatch } from '../../src/monitor/writer-watch.js';
import { openConnection } from '../../src/mysql/connect.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

const CONNECT_TIMEOUT_MS = 1000;
/** Stated slack for a loaded 2-core machine: the bound is the connect timeout, not the budget. */
const SLACK_MS = 700;
/** The whole-host budget, far above the connect timeout: it must not be what ends the check. */
const CHECK_TIMEOUT_MS = 8000;

test('a stopped mariadbd (SIGSTOP) fails the manager check, the agent probe and the writer watch within the connect timeout, and is not "refused"', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 1, replicas: 0 });
  const { config } = sandbox;
  const host = config.hosts.db1;
  assert.ok(host);
  const password = readSecret(
    { file: config.mysql.password_file, env: config.mysql.password_env },
    'mysql.password',
  );
  const target: CheckTarget = {
    name: 'db1',
    host,
    user: config.mysql.user,
    password,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    checkTimeoutMs: CHECK_TIMEOUT_MS,
    heartbeat: { schema: config.heartbeat.schema },
  };
  assert.equal((await observeHost(target)).reachable, true, 'the running server passes');
  const probeTarget = { host: 'db1', address: host.address, port: host.port };
  assert.equal((await probeMysqlPort(probeTarget, CONNECT_TIMEOUT_MS)).ok, true);

  const stalled: string[] = [];
  const watch = new WriterWatch({
    open: () =>
      openConnection({
        host: host.address,
        port: host.port,
        user: config.mysql.user,
        password,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
      }),
    onLost: () => undefined,
    ping: { everyMs: 100, stallMs: 100, onStalled: (name) => stalled.push(name) },
  });
  t.after(() => watch.close());
  watch.watch('db1');
  await waitFor('the watch connection', async () => watch.watching() === 'db1', 10_000);

  const pid = sandbox.instance('db1').pid();
  assert.ok(pid, 'db1 has a pid');
  let stopped = false;
  const resume = () => {
    if (!stopped) return;
    stopped = false;
    process.kill(pid, 'SIGCONT');
  };
  t.after(resume); // a last resort: the finally below resumes it before any teardown runs
  process.kill(pid, 'SIGSTOP');
  stopped = true;
  try {
    const [observation, probe] = await Promise.all([
      observeHost(target),
      probeMysqlPort(probeTarget, CONNECT_TIMEOUT_MS),
    ]);
    const checkMs = observation.checks.ping?.durationMs ?? Number.POSITIVE_INFINITY;
    t.diagnostic(`check: ${observation.error} after ${checkMs} ms`);
    assert.equal(observation.reachable, false, 'a hung server is not reachable');
    assert.equal(observation.checks.ping?.ok, false);
    assert.equal(observation.refusal, undefined, 'a hung server is not a refusal');
    assert.ok(
      checkMs <= CONNECT_TIMEOUT_MS + SLACK_MS,
      `the check took ${checkMs} ms, not bounded by connect_timeout ${CONNECT_TIMEOUT_MS} ms`,
    );

    const probeMs = probe.finishedAt - probe.startedAt;
    t.diagnostic(`probe: ${probe.detail} after ${probeMs} ms`);
    assert.equal(probe.ok, false, 'the agent probe fails');
    assert.equal(probe.refused, false, 'the agent probe does not call it refused');
    assert.match(probe.detail, /no greeting within/);
    assert.ok(probeMs <= CONNECT_TIMEOUT_MS + SLACK_MS, `the probe took ${probeMs} ms`);

    await waitFor('the writer watch to notice the stall', async () => stalled.length > 0, 5000);
    assert.deepEqual(stalled, ['db1']);
  } finally {
    resume();
  }
  await waitFor('db1 answers again', async () => (await observeHost(target)).reachable, 10_000);
});

test('a server that greets and logs in but never answers a query fails the check within the connect timeout', async (t) => {
  // A MySQL-protocol server (mysql2's server side) that completes the handshake and then goes
  // silent: what a server stopped right after the login looks like to the check.
  const sockets = new Set<{ stream: { destroy(): void } }>();
  const server = mysql.createServer((connection) => {
    sockets.add(connection as unknown as { stream: { destroy(): void } });
    connection.serverHandshake({
      protocolVersion: 10,
      serverVersion: '10.11.0-MariaDB-hung',
      connectionId: 1,
      statusFlags: 2,
      characterSet: 8,
      capabilityFlags: 0xffffff,
    });
    connection.on('query', () => undefined); // never answers
    connection.on('error', () => undefined);
  });
  // mysql2's Server wraps a net.Server and passes listen()'s arguments on; its typings know one.
  const listener = (server as unknown as { _server: Server })._server;
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', () => resolve()));
  t.after(() => {
    for (const socket of sockets) socket.stream.destroy();
    listener.close();
  });
  const { port } = listener.address() as AddressInfo;
  const observation = await observeHost({
    name: 'hung',
    host: { address: '127.0.0.1', port } as CheckTarget['host'],
    user: 'switchyard',
    password: 'x',
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    checkTimeoutMs: CHECK_TIMEOUT_MS,
    heartbeat: { schema: 'switchyard' },
  });
  const took = observation.checks.ping?.durationMs ?? Number.POSITIVE_INFINITY;
  t.diagnostic(`check: ${observation.error} after ${took} ms`);
  assert.equal(observation.reachable, false);
  assert.equal(observation.checks.ping?.ok, false);
  assert.equal(observation.refusal, undefined);
  assert.match(observation.error ?? '', /SELECT 1/);
  assert.ok(
    took <= CONNECT_TIMEOUT_MS + SLACK_MS,
    `the check took ${took} ms: a server that does not answer must fail within connect_timeout, not the ${CHECK_TIMEOUT_MS} ms budget`,
  );
});
