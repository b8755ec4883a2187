/**
 * Issue 12 as the user met it: faults and repairs in a row on one cluster under a write load.
 * Every set-online of a host that only received the writer's transactions must succeed, no host
 * may end up held for "flapping" because its master died, every writer kill must fail over, and
 * a real errant write on an isolated old writer must still be refused and named.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { openConnection } from '../../src/mysql/connect.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { NETNS_CLUSTER_BINARIES, startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { startLoad } from '../support/load.js';

const ROUNDS = 10;

test(`${ROUNDS} rounds of writer kills, restarts, set-online and move-role under load: every failover happens, every set-online sticks; a real errant write is still refused`, async (t) => {
  if (!requireRoot(t, 'network namespaces') || !requireBinaries(t, NETNS_CLUSTER_BINARIES)) return;
  const cluster = await startNetnsCluster(t, { masters: 2, replicas: 1, preferFirst: false });
  const { daemon, logFile } = await startDaemon(t, cluster.config);
  const writerOf = () => daemon.status().roles.writer?.[cluster.writerVip] ?? null;
  const stateOf = (host: string) => daemon.status().hosts.find((entry) => entry.name === host);
  await waitFor('db1 to be the writer', async () => writerOf() === 'db1', 20_000);
  const { writes, sampler } = startLoad(t, cluster);
  await waitFor('writes', async () => writes.acked().length > 20, 10_000);

  const restart = async (host: string) => {
    await cluster.instance(host).start();
    await waitFor(
      `${host} back and held`,
      async () => stateOf(host)?.state === 'AWAITING_RECOVERY',
      30_000,
    ).catch((error: Error) => {
      const transitions = readFileSync(logFile, 'utf8')
        .split('\n')
        .filter(
          (line) => line.includes('"host.state_changed"') && line.includes(`"host":"${host}"`),
        )
        .slice(-6);
      const journal = daemon.journal
        .read()
        .filter((entry) => entry.host === host && !entry.event.startsWith('vip.'))
        .slice(-10)
        .map((entry) => `${entry.event} ${entry.phase}: ${entry.reason ?? entry.detail ?? ''}`);
      throw new Error(
        `${error.message}; ${host} is ${stateOf(host)?.state} (${stateOf(host)?.reason}); last transitions:\n${transitions.join('\n')}\njournal:\n${journal.join('\n')}`,
      );
    });
    await waitFor(
      `${host} replicating`,
      async () =>
        (await cluster.instance(host).sql('SHOW SLAVE STATUS'))[0]?.Slave_IO_Running === 'Yes',
      30_000,
    );
    const online = await daemon.engine.setOnline(host);
    assert.equal(online.ok, true, `round set-online ${host}: ${online.detail}`);
  };

  for (let round = 1; round <= ROUNDS; round++) {
    const writer = writerOf() as string;
    const other = writer === 'db1' ? 'db2' : 'db1';
    // Asynchronous replication loses what the writer committed but had not sent when it is killed
    // under load: that host then really has transactions the new writer lacks, and set-online is
    // rightly refused. So the load pauses until the others have everything, and resumes at once.
    await writes.pause();
    const [position] = await cluster.instance(writer).sql('SELECT @@gtid_binlog_pos AS pos');
    for (const host of ['db1', 'db2', 'db3'].filter((name) => name !== writer)) {
      await cluster
        .instance(host)
        .sql('SELECT MASTER_GTID_WAIT(?, 10) AS result', [String(position?.pos ?? '')]);
    }
    const killedAt = Date.now();
    await cluster.instance(writer).kill();
    writes.resume();
    await waitFor(
      `round ${round}: ${other} to take over from ${writer}`,
      async () => writerOf() === other,
      30_000,
    );
    await waitFor(
      `round ${round}: a write on ${other}`,
      async () => writes.firstAckOfWriteSentAfter(killedAt + 50),
      30_000,
    );
    await restart(writer);
    if (round % 3 === 0) {
      // A replica restarts in between.
      await cluster.instance('db3').kill();
      await restart('db3');
    }
    if (round % 2 === 0) {
      const moved = await daemon.engine.moveRole('writer', writer, { force: false });
      assert.equal(moved.ok, true, `round ${round}: move-role writer ${writer}: ${moved.detail}`);
    }
    const held = daemon.status().hosts.filter((host) => host.held);
    assert.deepEqual(
      held.map((host) => `${host.name}: ${host.held}`),
      [],
      `round ${round}: nobody is held after the repairs`,
    );
    t.diagnostic(
      `round ${round}: ${writer} killed, ${other} wrote ${(writes.firstAckOfWriteSentAfter(killedAt + 50) as number) - killedAt} ms later; ${writer} set online`,
    );
  }

  // A real errant write: the writer is cut off, takes a write from a local client, is failed over.
  const writer = writerOf() as string;
  const other = writer === 'db1' ? 'db2' : 'db1';
  await cluster.nsHost(writer).exec('ip', ['link', 'set', 'eth0', 'down']);
  const local = await openConnection({
    socketPath: cluster.instance(writer).socket,
    user: cluster.appUser.user,
    password: cluster.appUser.password,
  });
  await local.query('INSERT INTO app.writes (id, at) VALUES (?, ?)', [999_999_999, Date.now()]);
  local.destroy();
  const [own] = await cluster.instance(writer).sql('SELECT @@server_id AS id');
  await waitFor(
    `${other} to take over from the isolated ${writer}`,
    async () => writerOf() === other,
    30_000,
  ).catch((error: Error) => {
    // Failed once in CI with no trace of why: say what the engine saw and did.
    const journal = daemon.journal
      .read()
      .filter((entry) => !entry.event.startsWith('vip.'))
      .slice(-15)
      .map(
        (entry) =>
          `${entry.event} ${entry.phase} ${entry.host ?? ''}: ${entry.reason ?? entry.detail ?? ''}`,
      );
    const hosts = daemon
      .status()
      .hosts.map((host) => `${host.name} ${host.state} (${host.reason})`);
    throw new Error(
      `${error.message}; hosts: ${hosts.join('; ')}; why: ${JSON.stringify(daemon.analysis()).slice(0, 1500)}\njournal:\n${journal.join('\n')}`,
    );
  });
  await cluster.nsHost(writer).exec('ip', ['link', 'set', 'eth0', 'up']);
  await waitFor(
    `${writer} back and held`,
    async () => stateOf(writer)?.state === 'AWAITING_RECOVERY',
    30_000,
  );
  const refused = await daemon.engine.setOnline(writer);
  assert.equal(refused.ok, false, 'set-online of a diverged host must be refused');
  assert.match(
    refused.detail,
    new RegExp(`${writer} has transactions the writer ${other} lacks \\(0-${Number(own?.id)}-\\d+`),
  );

  await writes.stop();
  await sampler.stop();
  const survivor = await openConnection({
    socketPath: cluster.instance(other).socket,
    user: 'root',
  });
  try {
    assert.deepEqual(await writes.missingAcked(survivor), [], 'acknowledged writes lost');
  } finally {
    survivor.destroy();
  }
  assert.deepEqual(
    sampler.samples.filter((sample) => sample.writable.length > 1).slice(0, 3),
    [],
    'two writable hosts',
  );
});
