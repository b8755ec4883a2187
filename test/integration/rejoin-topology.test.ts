/**
 * Issue 22 item 6: a rejoin rebuilds the old writer from a copy whose binlog starts at the copy.
 * Afterwards BOTH directions of the master-master pair must replicate (the writer's link back to
 * the rebuilt host too), and stay repairable: a failover onto the rebuilt host followed by the
 * return of the other master must replicate without 1236 and end with matching checksums.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runChecksum } from '../../src/checksum/run.js';
import { requireBinaries, requireRoot } from '../support/binaries.js';
import { startDaemon } from '../support/daemon.js';
import { startNetnsCluster } from '../support/netns-cluster.js';
import { waitFor } from '../support/sandbox.js';
import { cli, TRANSFER_BINARIES } from '../support/transfer-tests.js';

const NEEDS: Array<[string, string]> = [...TRANSFER_BINARIES, ['mariadb-binlog', 'mariadb-client']];

/** A write on the read-only passive master goes to its own GTID domain, so it never races the writer's sequence. */
const PASSIVE_DOMAIN = 9;

test(
  'after rejoin --discard-errant both master-master directions replicate; a failover onto the rebuilt host and the return of the other one replicate without 1236',
  { timeout: 400_000 },
  async (t) => {
    if (!requireRoot(t, 'network namespaces') || !requireBinaries(t, NEEDS)) return;
    const cluster = await startNetnsCluster(t, {
      masters: 2,
      replicas: 1,
      transfers: true,
      preferFirst: false,
      managerConfig: { backup: { dir: 'backups' } },
    });
    const { stop: stopDaemon, daemon } = await startDaemon(t, cluster.config);
    try {
      const config = ['-c', cluster.configFile];
      const db = (name: string) => cluster.instance(name);
      const stateOf = (name: string) =>
        daemon.status().hosts.find((host) => host.name === name)?.state;
      const writerOf = () => daemon.status().roles.writer?.[cluster.writerVip];
      const journalTail = () =>
        daemon.journal
          .read()
          .filter((entry) => !/^(agent\.exchange|vip\.|role\.)/.test(entry.event))
          .slice(-25)
          .map(
            (entry) =>
              `${entry.phase} ${entry.event} ${entry.host ?? ''} ${entry.outcome ?? ''} ${(entry.reason ?? entry.detail ?? '').slice(0, 300)}`,
          )
          .join('\n');
      const rowOn = async (name: string, id: number) =>
        (await db(name).sql('SELECT id FROM app.writes WHERE id = ?', [id])).length === 1;
      let nextId = 1000;

      /** `replica` replicates from `master`: both threads run, no IO error. A 1236 fails at once. */
      const replicates = async (replica: string, master: string) => {
        const [row] = await db(replica).sql('SHOW SLAVE STATUS');
        if (Number(row?.Last_IO_Errno) === 1236)
          throw new Error(`${replica} <- ${master}: 1236 ${String(row?.Last_IO_Error)}`);
        return (
          row?.Master_Host === cluster.nsHost(master).address &&
          row?.Slave_IO_Running === 'Yes' &&
          row?.Slave_SQL_Running === 'Yes' &&
          Number(row?.Last_IO_Errno) === 0
        );
      };
      /** Both directions run, and a write on each side arrives on the other. */
      const bothDirections = async (writer: string, passive: string, when: string) => {
        try {
          await waitFor(`${when}: ${passive} replicates from ${writer}`, () =>
            replicates(passive, writer),
          );
          await waitFor(`${when}: ${writer} replicates from ${passive}`, () =>
            replicates(writer, passive),
          );
        } catch (error) {
          for (const name of [writer, passive]) {
            const [row] = await db(name).sql('SHOW SLAVE STATUS');
            const [pos] = await db(name).sql(
              'SELECT @@gtid_binlog_pos AS b, @@gtid_slave_pos AS s, @@gtid_binlog_state AS st',
            );
            t.diagnostic(
              `${name}: master ${String(row?.Master_Host)} IO ${String(row?.Slave_IO_Running)} SQL ${String(row?.Slave_SQL_Running)} ${String(row?.Last_IO_Errno)} ${String(row?.Last_IO_Error)}; ${JSON.stringify(pos)}`,
            );
          }
          t.diagnostic(journalTail());
          throw error;
        }
        const onWriter = nextId++;
        await db(writer).sql('INSERT INTO app.writes VALUES (?, 1)', [onWriter]);
        await waitFor(`${when}: the write on ${writer} on ${passive}`, () =>
          rowOn(passive, onWriter),
        );
        const onPassive = nextId++;
        const connection = await db(passive).rootConnection();
        try {
          await connection.query(`SET SESSION gtid_domain_id = ${PASSIVE_DOMAIN}`);
          await connection.query('INSERT INTO app.writes VALUES (?, 2)', [onPassive]);
        } finally {
          connection.destroy();
        }
        await waitFor(`${when}: the write on ${passive} on ${writer}`, () =>
          rowOn(writer, onPassive),
        );
      };

      await waitFor(
        'every host ONLINE with db1 the writer',
        async () =>
          ['db1', 'db2', 'db3'].every((name) => stateOf(name) === 'ONLINE') && writerOf() === 'db1',
        20_000,
      );
      await db('db1').sql('INSERT INTO app.writes VALUES (1, 1), (2, 2)');
      await waitFor('the rows on db2 and db3', async () =>
        (await Promise.all(['db2', 'db3'].map((name) => rowOn(name, 2)))).every(Boolean),
      );

      // db1 takes a write that never leaves it, then dies: it comes back diverged and is rebuilt.
      for (const name of ['db2', 'db3']) await db(name).sql('STOP SLAVE IO_THREAD');
      await db('db1').sql('INSERT INTO app.writes VALUES (424242, 3)');
      await db('db1').kill();
      await waitFor('db2 to be the writer', async () => writerOf() === 'db2', 30_000);
      await db('db1').start();
      await waitFor(
        'db1 AWAITING_RECOVERY',
        async () => stateOf('db1') === 'AWAITING_RECOVERY',
        30_000,
      );
      await waitFor('db3 ONLINE under db2', async () => stateOf('db3') === 'ONLINE', 30_000);
      await db('db2').sql('INSERT INTO app.writes VALUES (3, 4)');

      const rejoin = await cli(['rejoin', 'db1', '--discard-errant', '--json', ...config]);
      assert.equal(rejoin.code, 0, `${rejoin.stderr}\n${rejoin.stdout}`);
      assert.equal(stateOf('db1'), 'ONLINE');
      assert.equal(await rowOn('db1', 424242), false, 'the errant write is gone from db1');
      await bothDirections('db2', 'db1', 'after the rejoin');

      // A failover onto the rebuilt db1. Nothing is lost on the way (the kill waits until db1 and
      // db3 have db2's position), so db2 has nothing errant when it returns.
      await waitFor('db1 and db3 ONLINE', async () =>
        ['db1', 'db3'].every((name) => stateOf(name) === 'ONLINE'),
      );
      const [position] = await db('db2').sql('SELECT @@gtid_binlog_pos AS pos');
      for (const name of ['db1', 'db3'])
        await db(name).sql('SELECT MASTER_GTID_WAIT(?, 10)', [String(position?.pos ?? '')]);
      await db('db2').kill();
      await waitFor('db1 to be the writer', async () => writerOf() === 'db1', 30_000);
      await db('db1').sql('INSERT INTO app.writes VALUES (5, 5)');

      // db2 returns: its own channel from the rebuilt db1 starts by itself when its server does.
      await db('db2').start();
      await waitFor(
        'db2 AWAITING_RECOVERY',
        async () => stateOf('db2') === 'AWAITING_RECOVERY',
        30_000,
      );
      await waitFor('db2 replicating from the rebuilt db1 on its own', () =>
        replicates('db2', 'db1'),
      );
      await waitFor('the write on db1 on db2', () => rowOn('db2', 5));
      const online = await daemon.engine.setOnline('db2');
      assert.equal(online.ok, true, online.detail);
      t.diagnostic(`set-online db2: ${online.detail}`);
      await bothDirections('db1', 'db2', 'after db2 returned');

      await waitFor('every host ONLINE', async () =>
        ['db1', 'db2', 'db3'].every((name) => stateOf(name) === 'ONLINE'),
      );
      const report = await runChecksum(cluster.config, { replicaWaitTimeoutMs: 20_000 });
      t.diagnostic(`checksum: writer ${report.writer}, ${JSON.stringify(report.hosts)}`);
      assert.equal(report.writer, 'db1');
      assert.deepEqual(report.hosts.map((host) => [host.host, host.status]).sort(), [
        ['db2', 'checked'],
        ['db3', 'checked'],
      ]);
      assert.equal(report.differences, 0, JSON.stringify(report.hosts));
      const failedStarts = daemon.journal
        .read()
        .filter(
          (entry) =>
            /start_slave|start_replication|replication\.reconnect/.test(entry.event) &&
            entry.outcome === 'failed',
        );
      assert.deepEqual(failedStarts, [], 'no replication start failed');
    } finally {
      await stopDaemon();
    }
  },
);
