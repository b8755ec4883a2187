import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { findFreePortRange } from '../../src/sandbox/ports.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, writeTestConfig } from '../support/daemon.js';
import { ETCD, startCuttableProxy, startTestEtcd } from '../support/etcd.js';
import { managerProcess, termsByManager, type ManagerProcess } from '../support/ha-managers.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

const execFileAsync = promisify(execFile);
const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;
const LEASE = '2s';
const LEASE_MS = 2000;

async function leaderOf(managers: ManagerProcess[]): Promise<ManagerProcess | undefined> {
  const answers = await Promise.all(
    managers.map(async (manager) =>
      (manager.alive() && (await manager.leader())) === 1 ? manager : undefined,
    ),
  );
  const leaders = answers.filter((manager) => manager !== undefined);
  assert.ok(
    leaders.length <= 1,
    `two managers claim to lead: ${leaders.map((manager) => manager?.name).join(', ')}`,
  );
  return leaders[0];
}

test(
  'three managers on etcd: one leads, followers refuse control with the leader URL, kill -9 of the leader hands over and a failover right after still happens',
  { timeout: 240_000 },
  async (t) => {
    if (!requireBinaries(t, [...MARIADB, ...ETCD])) return;
    const etcd = await startTestEtcd(t);
    const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
    const ports = await findFreePortRange(3);
    // m1 reaches etcd through proxies the test can cut (a partition of that manager alone).
    const proxies = await Promise.all(
      etcd.endpoints.map((endpoint) => startCuttableProxy(t, endpoint)),
    );
    const managers = ['m1', 'm2', 'm3'].map((name, index) =>
      managerProcess(
        t,
        name,
        writeTestConfig(sandbox, `${name}.yml`, (raw) => {
          raw.monitor = FAST_MONITOR;
          raw.listen = `127.0.0.1:${ports + index}`;
          raw.state_dir = join(sandbox.dir, name);
          raw.ha = {
            etcd: {
              endpoints: name === 'm1' ? proxies.map((proxy) => proxy.url) : etcd.endpoints,
              prefix: '/switchyard-test',
            },
            lease: LEASE,
          };
        }),
      ),
    );
    for (const manager of managers) manager.start();

    const first = await waitFor('one manager to lead', () => leaderOf(managers), 30_000, 100);
    await waitFor(
      'the writer role assigned',
      async () =>
        ((await first.api('GET', '/status')).body as any).roles?.writer?.['127.0.1.100'] === 'db1',
      30_000,
      200,
    );
    const followers = managers.filter((manager) => manager !== first) as [
      ManagerProcess,
      ManagerProcess,
    ];

    // Reads work on followers (the leader's state from etcd); control is refused with the leader's URL.
    await waitFor(
      "a follower to show the leader's roles",
      async () =>
        ((await followers[0].api('GET', '/status')).body as any).roles?.writer?.['127.0.1.100'] ===
        'db1',
      10_000,
      200,
    );
    // A follower names the leader once its own leadership round has read the election key
    // (every round, about a second); until then it refuses without one (seen once in CI).
    let refused = await followers[0].api('PUT', '/mode', { mode: 'manual' });
    await waitFor(
      'a follower to refuse control naming the leader',
      async () => {
        refused = await followers[0].api('PUT', '/mode', { mode: 'manual' });
        return refused.status === 409 && refused.body.leader !== undefined;
      },
      10_000,
      200,
    );
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error, 'not_leader');
    assert.equal(refused.body.leader, first.url);
    // The second follower may still be starting (a slow start refused this connection once in CI).
    await waitFor(
      'the second follower to answer',
      async () => (await followers[1].api('GET', '/status')).status === 200,
      10_000,
      200,
    );
    const webhook = await followers[1].api('POST', '/alerts', {
      version: '4',
      status: 'firing',
      alerts: [],
      groupKey: 'x',
      receiver: 'switchyard',
    });
    assert.equal(webhook.status, 409);
    assert.equal(
      (await first.api('GET', '/status')).body.mode,
      'active',
      'the refused command changed nothing',
    );
    // The CLI pointed at a follower follows the leader's URL.
    const cli = await execFileAsync(process.execPath, [
      CLI,
      'set-online',
      'db3',
      '--url',
      followers[0].url,
      '--token-file',
      followers[0].config.auth.token_file as string,
    ]);
    assert.match(cli.stdout, /db3 is already ONLINE/);

    // kill -9 the leader, then the writer: another manager takes over and fails the writer over.
    const killedAt = Date.now();
    await first.kill('SIGKILL');
    await sandbox.instance('db1').kill();
    const second = await waitFor('another manager to lead', () => leaderOf(followers), 30_000, 50);
    const ledAfter = Date.now() - killedAt;
    const gained = second
      .journal()
      .find((entry) => entry.event === 'ha.leadership_gained' && entry.at >= killedAt);
    console.log(
      `# ${second.name} leads ${ledAfter} ms after kill -9 of ${first.name}${gained ? ` (journal: ${gained.at - killedAt} ms)` : ''}; lease ${LEASE_MS} ms`,
    );
    await waitFor(
      'the new leader to move the writer to db2',
      async () =>
        ((await second.api('GET', '/status')).body as any).roles?.writer?.['127.0.1.100'] === 'db2',
      60_000,
      200,
    );
    const failover = second
      .journal()
      .find((entry) => entry.event.startsWith('failover') && entry.term !== undefined);
    assert.ok(failover, 'the failover is journaled by the new leader with its term');
    console.log(`# writer on db2 ${Date.now() - killedAt} ms after the kills`);

    // Over a bounded loop of leader kills, no term ever shows actions from two managers.
    first.start();
    let current = second;
    for (let round = 0; round < 3; round++) {
      const others = managers.filter((manager) => manager !== current);
      await current.kill('SIGKILL');
      const next = await waitFor(
        `round ${round}: a new leader`,
        () => leaderOf(others),
        30_000,
        50,
      );
      // Decisions journaled in its term (a mode change there and back).
      assert.equal((await next.api('PUT', '/mode', { mode: 'manual' })).status, 200);
      assert.equal((await next.api('PUT', '/mode', { mode: 'active' })).status, 200);
      current.start();
      current = next;
    }
    // SIGSTOP the leader for 2 x lease, then SIGCONT: another leads meanwhile, and nothing the
    // resumed one does afterwards is an action in its old term.
    const paused = current;
    const pausedTerm = Math.max(
      ...paused
        .journal()
        .filter((entry) => entry.term !== undefined)
        .map((entry) => entry.term as number),
    );
    paused.child?.kill('SIGSTOP');
    const others = managers.filter((manager) => manager !== paused);
    const successor = await waitFor(
      'a leader while the old one is stopped',
      () => leaderOf(others),
      30_000,
      50,
    );
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 2 * LEASE_MS)));
    const resumedAt = Date.now();
    paused.child?.kill('SIGCONT');
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS + 1000));
    assert.equal(await paused.leader(), 0, 'the resumed manager follows');
    assert.equal(await leaderOf(managers), successor, 'the successor still leads');
    const late = paused
      .journal()
      .filter(
        (entry) =>
          entry.at >= resumedAt &&
          entry.term === pausedTerm &&
          ['before', 'after', 'decision'].includes(entry.phase),
      );
    assert.deepEqual(late, [], 'no action in the old term after the pause');
    assert.ok(
      paused
        .journal()
        .some((entry) => entry.event === 'ha.leadership_lost' && entry.at >= resumedAt),
      'the resumed manager journals that it lost the lead',
    );
    console.log(
      `# after SIGCONT ${paused.name} follows ${successor.name}; nothing in its old term ${pausedTerm} was applied`,
    );

    // Partition: make m1 the leader, then cut m1 off from etcd. It stops acting within the lease,
    // and another manager leads. m1 is made the leader by leaving it the only manager running:
    // killing leaders until m1 wins a race against one other follower left it a follower after
    // 6 kills in one CI run.
    const m1 = managers[0] as ManagerProcess;
    if ((await waitFor('a leader', () => leaderOf(managers), 30_000, 50)) !== m1) {
      const rest = managers.filter((manager) => manager !== m1);
      for (const manager of rest) await manager.kill('SIGKILL');
      await waitFor('m1 to lead, the only manager running', () => leaderOf([m1]), 30_000, 50);
      for (const manager of rest) manager.start();
    }
    if ((await leaderOf(managers)) === m1) {
      await waitFor(
        'm1 to take the state over',
        async () =>
          ((await m1.api('GET', '/status')).body as any).roles?.writer?.['127.0.1.100'] === 'db2',
        10_000,
        100,
      );
      const cutAt = Date.now();
      for (const proxy of proxies) proxy.cut();
      const stoppedAfter = await waitFor(
        'm1 to stop leading',
        async () => ((await m1.leader()) === 0 ? Date.now() - cutAt : undefined),
        30_000,
        20,
      );
      console.log(
        `# m1 cut off from etcd: it stopped acting ${stoppedAfter} ms later (lease ${LEASE_MS} ms; switchyard_leader is read at scrape time)`,
      );
      const after = await waitFor(
        'another manager to lead',
        () => leaderOf(managers.filter((manager) => manager !== m1)),
        30_000,
        50,
      );
      assert.notEqual(after, m1);
      assert.equal(await m1.leader(), 0, 'the partitioned manager still follows');
    } else {
      assert.fail('m1 did not stay the leader once the other managers were started again');
    }

    const terms = termsByManager(managers);
    assert.ok(terms.size >= 4, `actions in at least 4 terms (saw ${terms.size})`);
    for (const [term, names] of terms)
      assert.equal(names.size, 1, `term ${term} shows actions from ${[...names].join(' and ')}`);
  },
);
