import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { runChecksum } from '../../src/checksum/run.js';
import { binlogWindow } from '../../src/transfer/rejoin.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { cli, TRANSFER_BINARIES } from '../support/transfer-tests.js';

const NEEDS: Array<[string, string]> = [...TRANSFER_BINARIES, ['mariadb-binlog', 'mariadb-client']];

test(
  'rejoin of a diverged old writer: refused without --discard-errant; with it the errant write is saved to a file, the host reseeded from a replica and ONLINE again',
  { timeout: 300_000 },
  async (t) => {
    if (!requireRoot(t, 'network namespaces') || !requireBinaries(t, NEEDS)) return;
    const began = Date.now();
    const mark = (what: string) =>
      t.diagnostic(`${what} at ${((Date.now() - began) / 1000).toFixed(1)} s`);
    const cluster = await startNetnsCluster(t, {
      masters: 2,
      replicas: 1,
      transfers: true,
      managerConfig: { backup: { dir: 'backups' } },
    });
    const { stop: stopDaemon, daemon } = await startDaemon(t, cluster.config);
    // Stopped before the cluster is torn down: a monitor query to a deleted namespace would hang until TCP gives up (~15 min).
    try {
      const config = ['-c', cluster.configFile];
      const stateOf = (name: string) =>
        daemon.status().hosts.find((host) => host.name === name)?.state;
      mark('cluster up');
      await waitFor(
        'every host ONLINE with db1 the writer',
        async () =>
          ['db1', 'db2', 'db3'].every((name) => stateOf(name) === 'ONLINE') &&
          daemon.status().roles.writer?.[cluster.writerVip] === 'db1',
        20_000,
      );
      const [db1, db2, db3] = ['db1', 'db2', 'db3'].map((name) => cluster.instance(name)) as [
        ReturnType<typeof cluster.instance>,
        ReturnType<typeof cluster.instance>,
        ReturnType<typeof cluster.instance>,
      ];
      await db1.sql('INSERT INTO app.writes VALUES (1, 1), (2, 2)');
      await waitFor('the rows on db2 and db3', async () =>
        (
          await Promise.all(
            [db2, db3].map(async (db) =>
              Number((await db.sql('SELECT COUNT(*) AS n FROM app.writes'))[0]?.n),
            ),
          )
        ).every((n) => n === 2),
      );

      // db1 takes a write that never leaves it (its replicas stopped receiving), then dies: a failover follows.
      for (const db of [db2, db3]) await db.sql('STOP SLAVE IO_THREAD');
      await db1.sql('INSERT INTO app.writes VALUES (424242, 3)');
      await db1.kill();
      const killed = Date.now();
      await waitFor(
        'db2 to be the writer',
        async () => daemon.status().roles.writer?.[cluster.writerVip] === 'db2',
        30_000,
      );
      t.diagnostic(`failover after ${Date.now() - killed} ms`);
      await db1.start();
      await waitFor(
        'db1 AWAITING_RECOVERY',
        async () => stateOf('db1') === 'AWAITING_RECOVERY',
        20_000,
      );
      await waitFor('db3 ONLINE under db2', async () => stateOf('db3') === 'ONLINE', 20_000);
      await db2.sql('INSERT INTO app.writes VALUES (3, 4)');
      // Manual mode: operator commands (rejoin's set-online) act, but the `prefer` host db1 does not take
      // the writer role back on its own afterwards (that switchover is the engine's business, not rejoin's).
      assert.equal((await daemon.engine.setMode('manual', 'rejoin test')).ok, true);

      mark('before');
      const before = String((await db1.sql('SELECT @@gtid_binlog_pos AS p'))[0]?.p);
      const refused = await cli(['rejoin', 'db1', ...config]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(
        refused.stderr,
        /db1 has \d+ errant transaction\(s\) the writer db2 lacks \(0-1-[\d.]+\); nothing was changed/,
      );
      assert.equal(String((await db1.sql('SELECT @@gtid_binlog_pos AS p'))[0]?.p), before);
      assert.equal(stateOf('db1'), 'AWAITING_RECOVERY');
      assert.equal((await db1.sql('SELECT id FROM app.writes WHERE id = 424242')).length, 1);

      mark('rejoinStarted');
      const rejoinStarted = Date.now();
      const rejoin = await cli(['rejoin', 'db1', '--discard-errant', '--json', ...config]);
      t.diagnostic(`rejoin --discard-errant took ${Date.now() - rejoinStarted} ms`);
      assert.equal(rejoin.code, 0, `${rejoin.stderr}\n${rejoin.stdout}`);
      const lines = rejoin.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const first = lines[0] as { errant: string[]; errant_file: string; from: string };
      assert.equal(first.from, 'db3', 'reseeded from the replica, not the writer');
      const saved = readFileSync(first.errant_file, 'utf8');
      assert.match(saved, /424242/, 'the saved file holds the errant write');
      // The heartbeat writer may have added its own errant rows before db1 died: the last of each
      // range is in the file (the others may be numbers another server's transactions hold).
      for (const gtid of first.errant.map((range) => binlogWindow(range).stop))
        assert.match(saved, new RegExp(`GTID ${gtid}\\b`));
      t.diagnostic(
        `errant ${first.errant.join(', ')} saved to ${first.errant_file} (${saved.length} bytes)`,
      );

      assert.equal(stateOf('db1'), 'ONLINE');
      const detail = (lines[lines.length - 1] as { result: { detail: string } }).result.detail;
      assert.match(
        detail,
        new RegExp(`replicating from ${cluster.nsHost('db2').address.replace(/\./g, '\\.')}:3306`),
        'the copy was pointed at the writer',
      );
      assert.equal(
        (await db1.sql('SELECT id FROM app.writes WHERE id = 424242')).length,
        0,
        'the errant write is gone from db1',
      );
      await waitFor(
        "db1 has the new writer's rows",
        async () => (await db1.sql('SELECT id FROM app.writes WHERE id = 3')).length === 1,
        20_000,
      );
      // Settled: every host ONLINE and exactly the writer role's holder writable.
      const settled = async () => {
        const holder = daemon.status().roles.writer?.[cluster.writerVip];
        if (!['db1', 'db2', 'db3'].every((name) => stateOf(name) === 'ONLINE')) return false;
        const readOnly = await Promise.all(
          ['db1', 'db2', 'db3'].map(
            async (name) =>
              [
                name,
                Number((await cluster.instance(name).sql('SELECT @@read_only AS ro'))[0]?.ro),
              ] as const,
          ),
        );
        return readOnly.every(([name, ro]) => ro === (name === holder ? 0 : 1));
      };
      try {
        await waitFor('the cluster to settle', settled, 30_000);
      } catch (error) {
        t.diagnostic(
          JSON.stringify(daemon.status().hosts.map((host) => [host.name, host.state, host.reason])),
        );
        for (const entry of daemon.journal.read().slice(-15))
          t.diagnostic(
            `${entry.phase} ${entry.event} ${entry.host ?? ''} ${entry.outcome ?? ''} ${(entry.reason ?? entry.detail ?? '').slice(0, 300)}`,
          );
        throw error;
      }
      mark('report');
      const report = await runChecksum(cluster.config, { replicaWaitTimeoutMs: 20_000 });
      t.diagnostic(
        `checksum: writer ${report.writer}, ${JSON.stringify(report.hosts)}; positions ${JSON.stringify(await Promise.all(['db1', 'db2', 'db3'].map(async (name) => (await cluster.instance(name).sql('SELECT @@gtid_binlog_pos AS b, @@gtid_current_pos AS c, @@gtid_slave_pos AS s'))[0])))}`,
      );
      assert.deepEqual(
        report.hosts.map((host) => [host.host, host.status]).sort(),
        [
          ['db1', 'checked'],
          ['db2', 'checked'],
          ['db3', 'checked'],
        ].filter(([name]) => name !== report.writer),
      );
      assert.equal(report.differences, 0, JSON.stringify(report.hosts));
      mark('events');
      const events = daemon.journal
        .read()
        .filter((entry) => entry.host === 'db1' && /rejoin/.test(entry.event))
        .map((entry) => `${entry.phase}:${entry.event}:${entry.outcome ?? ''}`);
      assert.deepEqual(events, [
        'refused:host.rejoin:',
        'note:rejoin.errant_saved:',
        'before:rejoin.transfer:',
        'after:rejoin.transfer:ok',
      ]);

      // A replica that merely restarted has nothing errant: rejoin repoints it and sets it online, no copy.
      await db3.kill();
      await db3.start();
      await waitFor(
        'db3 AWAITING_RECOVERY',
        async () => stateOf('db3') === 'AWAITING_RECOVERY',
        20_000,
      );
      const plain = await cli(['rejoin', 'db3', ...config]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.match(plain.stdout, /db3 replicates from db2 from GTID .*db3 is ONLINE/);
      assert.equal(stateOf('db3'), 'ONLINE');
    } finally {
      await stopDaemon();
    }
  },
);
