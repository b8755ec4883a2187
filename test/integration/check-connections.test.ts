/**
 * The monitor's kept check connections against a real MariaDB: reused while they answer; a hung
 * server fails the check on its kept connection as it would on a new one (not refused, within
 * connect_timeout); a killed server is checked afresh in the same check, so the check still says
 * "refused"; a restarted one gets a new login; and a fresh login comes at least every
 * FRESH_LOGIN_EVERY_MS even while the kept connection answers.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { readSecret } from '../../src/config/secrets.js';
import { CheckConnections, FRESH_LOGIN_EVERY_MS } from '../../src/monitor/check-connections.js';
import { observeHost, type CheckTarget } from '../../src/monitor/checks.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { startSandbox, waitFor, type TestSandbox } from '../support/sandbox.js';

const CONNECT_TIMEOUT_MS = 1000;
/** Stated slack for a loaded 2-core machine: the bound is the connect timeout, not the budget. */
const SLACK_MS = 700;

/**
 * Every thread of `pid` stopped: SIGSTOP is delivered asynchronously, and a thread still running
 * on the other core answered a query on the kept connection right after kill() returned (CI).
 */
function allThreadsStopped(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((task) => {
    const stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'T' || state === 't';
  });
}

/** What the monitor checks `name` with, on the sandbox's accounts and this file's timeouts. */
function checkTarget(
  sandbox: TestSandbox,
  name: string,
  heartbeat: CheckTarget['heartbeat'],
): CheckTarget {
  const { config } = sandbox;
  const host = config.hosts[name];
  assert.ok(host, `${name} is a sandbox host`);
  return {
    name,
    host,
    user: config.mysql.user,
    password: readSecret(
      { file: config.mysql.password_file, env: config.mysql.password_env },
      'mysql.password',
    ),
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    checkTimeoutMs: 8000,
    heartbeat,
  };
}

test('kept check connections: reused while healthy, and a hung, killed or restarted server is checked as with a new connection', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 1, replicas: 0 });
  const target = checkTarget(sandbox, 'db1', { schema: sandbox.config.heartbeat.schema });
  let now = Date.now();
  const connections = new CheckConnections(() => now);
  t.after(() => connections.close());

  const first = await observeHost(target, Date.now(), connections);
  const second = await observeHost(target, Date.now(), connections);
  assert.equal(first.reachable, true, first.error);
  assert.equal(second.reachable, true, second.error);
  assert.equal(second.connectionId, first.connectionId, 'the second check reused the connection');
  assert.deepEqual(connections.hosts(), ['db1']);

  now += FRESH_LOGIN_EVERY_MS;
  const aged = await observeHost(target, Date.now(), connections);
  assert.equal(aged.reachable, true, aged.error);
  assert.notEqual(aged.connectionId, second.connectionId, 'a fresh login once the kept one aged');

  // Hung: SIGSTOP. The kept connection gets no answer to SELECT 1.
  const pid = sandbox.instance('db1').pid();
  assert.ok(pid, 'db1 has a pid');
  assert.match(
    readFileSync(`/proc/${pid}/comm`, 'utf8'),
    /^(mariadbd|mysqld)/,
    'the pid is the server',
  );
  let stopped = false;
  const resume = () => {
    if (!stopped) return;
    stopped = false;
    process.kill(pid, 'SIGCONT');
  };
  t.after(resume);
  process.kill(pid, 'SIGSTOP');
  stopped = true;
  try {
    await waitFor('every mariadbd thread stopped', async () => allThreadsStopped(pid), 5000, 10);
    const hung = await observeHost(target, Date.now(), connections);
    const took = hung.checks.ping?.durationMs ?? Number.POSITIVE_INFINITY;
    t.diagnostic(`hung: ${hung.error} after ${took} ms`);
    assert.equal(hung.reachable, false, 'a hung server is not reachable');
    assert.equal(hung.refusal, undefined, 'a hung server is not a refusal');
    assert.ok(took <= CONNECT_TIMEOUT_MS + SLACK_MS, `the check took ${took} ms`);
    assert.deepEqual(connections.hosts(), [], 'the failed check kept nothing');
  } finally {
    resume();
  }
  await waitFor(
    'db1 answers again',
    async () => (await observeHost(target, Date.now(), connections)).reachable,
    10_000,
  );
  assert.deepEqual(connections.hosts(), ['db1']);

  // Killed: the kept connection is broken; the same check connects afresh and is refused.
  await sandbox.instance('db1').kill();
  const killed = await observeHost(target, Date.now(), connections);
  t.diagnostic(`killed: ${killed.error}`);
  assert.equal(killed.reachable, false);
  assert.equal(killed.refusal, 'refused', 'a killed server is still checked as refused');
  assert.deepEqual(connections.hosts(), []);

  await sandbox.instance('db1').start();
  const back = await waitFor(
    'db1 back after its restart',
    async () => {
      const observation = await observeHost(target, Date.now(), connections);
      return observation.reachable ? observation : undefined;
    },
    30_000,
  );
  assert.ok(
    (back.uptimeSeconds ?? Number.POSITIVE_INFINITY) < 60,
    'the check reads the restarted server',
  );
});

/** Counts the packets a kept connection sends while a check runs on it (one per round trip). */
class CountingConnections extends CheckConnections {
  writes = 0;
  private readonly counted = new WeakSet<object>();
  override take(host: string) {
    const connection = super.take(host);
    const stream = (
      connection as unknown as {
        connection?: { stream?: { write: (...args: unknown[]) => boolean } };
      }
    )?.connection?.stream;
    if (stream && !this.counted.has(stream)) {
      this.counted.add(stream);
      const write = stream.write.bind(stream);
      stream.write = (...args: unknown[]) => {
        this.writes += 1;
        return write(...args);
      };
    }
    return connection;
  }
}

test('a check on a kept connection is one round trip and reads what a fresh login reads; a refused statement falls back to one query at a time', async (t) => {
  if (!requireBinaries(t, MARIADB)) return;
  const sandbox = await startSandbox(t, { masters: 1, replicas: 1 });
  const replica = Object.keys(sandbox.config.hosts).find((name) => name !== 'db1') as string;
  const [writer] = await sandbox.instance('db1').sql('SELECT @@server_id AS id');
  const schema = 'check_batch';
  const target = checkTarget(sandbox, replica, { schema, writerServerId: Number(writer?.id) });
  const connections = new CountingConnections();
  t.after(() => connections.close());
  const fresh = await observeHost(target, Date.now());
  assert.equal(fresh.reachable, true, fresh.error);

  // No heartbeat table yet: the batch's last statement is refused; the check still reads
  // everything else on the kept connection and says what the lag check met.
  await observeHost(target, Date.now(), connections);
  const refused = await observeHost(target, Date.now(), connections);
  assert.equal(refused.reachable, true, refused.error);
  assert.equal(refused.connectionFresh, false, 'the kept connection was used');
  assert.equal(refused.checks.lag?.ok, false);
  assert.match(refused.checks.lag?.detail ?? '', /not readable/);
  assert.equal(refused.heartbeatLagSeconds, null);

  await sandbox.instance('db1').sql(`CREATE DATABASE ${schema}`);
  await sandbox
    .instance('db1')
    .sql(
      `CREATE TABLE ${schema}.heartbeat (server_id INT UNSIGNED NOT NULL PRIMARY KEY, ts DATETIME(6) NOT NULL)`,
    );
  await sandbox
    .instance('db1')
    .sql(`INSERT INTO ${schema}.heartbeat VALUES (@@server_id, UTC_TIMESTAMP(6))`);
  await waitFor(
    'the heartbeat row on the replica',
    async () =>
      (await sandbox.instance(replica).sql(`SELECT * FROM ${schema}.heartbeat`)).length > 0,
    10_000,
  );
  const before = connections.writes;
  const batched = await observeHost(target, Date.now(), connections);
  assert.equal(batched.reachable, true, batched.error);
  assert.equal(batched.connectionFresh, false);
  assert.equal(connections.writes - before, 1, 'one packet for the whole check');
  const again = await observeHost(target, Date.now());
  for (const observation of [batched, again]) {
    assert.equal(observation.checks.lag?.ok, true, observation.checks.lag?.detail);
    assert.equal(typeof observation.heartbeatLagSeconds, 'number');
  }
  // What a fresh login (statement by statement) reads, the batch reads too.
  assert.equal(batched.readOnly, again.readOnly);
  assert.equal(batched.serverId, again.serverId);
  assert.equal(batched.version, again.version);
  assert.deepEqual(batched.gtid, again.gtid);
  assert.equal(batched.gtidStrictMode, again.gtidStrictMode);
  assert.equal(batched.slaveNetTimeoutSeconds, again.slaveNetTimeoutSeconds);
  assert.ok(batched.replication && again.replication, 'the replica replicates');
  assert.equal(batched.replication.ioRunning, again.replication.ioRunning);
  assert.equal(batched.replication.sqlRunning, again.replication.sqlRunning);
  assert.equal(batched.replication.masterHost, again.replication.masterHost);
  assert.ok(Math.abs((batched.uptimeSeconds ?? 0) - (again.uptimeSeconds ?? -99)) <= 2);
});
