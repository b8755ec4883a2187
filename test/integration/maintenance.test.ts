import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderStatus } from '../../src/cli/commands/show.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { startAlertmanager } from '../support/prometheus.js';
import { startSandbox, waitFor } from '../support/sandbox.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test(
  'an Alertmanager silence on db1 holds the failover off while db1 is dead; expiring it lets the failover happen',
  { timeout: 180_000 },
  async (t) => {
    if (!requireBinaries(t, [...MARIADB, ['prometheus-alertmanager', 'prometheus-alertmanager']]))
      return;
    const sandbox = await startSandbox(t, { masters: 2, replicas: 1 });
    const alertmanager = await startAlertmanager(t, {
      webhookUrl: `http://127.0.0.1:${sandbox.listenPort}/api/v1/alerts`,
      credentialsFile: sandbox.config.auth.token_file as string,
    });
    const config = writeTestConfig(sandbox, 'maintenance.yml', (raw) => {
      raw.monitor = FAST_MONITOR;
      raw.listen = `127.0.0.1:${sandbox.listenPort}`;
      raw.triggers = { ...(raw.triggers ?? {}), alertmanager_url: alertmanager.url };
    });
    const { daemon, url } = await startDaemon(t, config);
    const writer = () => daemon.status().roles.writer?.['127.0.1.100'];
    await waitFor('db1 to hold the writer role', async () => writer() === 'db1', 20_000);

    // The operator's silence for db1's maintenance, as amtool or the UI would create it.
    const created = await fetch(`${alertmanager.url}/api/v2/silences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        matchers: [
          { name: 'cluster', value: 'sandbox', isRegex: false, isEqual: true },
          { name: 'host', value: 'db1', isRegex: false, isEqual: true },
        ],
        startsAt: new Date().toISOString(),
        endsAt: new Date(Date.now() + 3_600_000).toISOString(),
        createdBy: 'maintenance test',
        comment: 'db1 kernel upgrade',
      }),
    });
    assert.equal(created.status, 200, await created.clone().text());
    const { silenceID } = (await created.json()) as { silenceID: string };
    await waitFor(
      'db1 in maintenance',
      async () => daemon.status().maintenance?.hosts.db1?.silence === silenceID,
      20_000,
      100,
    );
    const status = daemon.status();
    assert.equal(status.maintenance?.readable, true);
    assert.equal(
      status.hosts.find((host) => host.name === 'db1')?.maintenance?.comment,
      'db1 kernel upgrade',
    );
    assert.equal(status.hosts.find((host) => host.name === 'db2')?.maintenance, undefined);
    assert.match(
      renderStatus(status),
      /db1: in maintenance until .* \(silence .* by maintenance test: db1 kernel upgrade\)/,
    );
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /switchyard_maintenance\{host="db1",cluster="sandbox"\} 1/);
    assert.match(metrics, /switchyard_maintenance\{host="db2",cluster="sandbox"\} 0/);

    // db1's mariadbd dies during its maintenance: no failover, however long it stays dead.
    await sandbox.instance('db1').kill();
    await waitFor(
      'db1 HARD_OFFLINE',
      async () =>
        daemon.status().hosts.find((host) => host.name === 'db1')?.state === 'HARD_OFFLINE',
      20_000,
    );
    await waitFor(
      'the withheld failover journaled',
      async () =>
        daemon.journal
          .read()
          .some(
            (entry) =>
              entry.event === 'failover.withheld' && /in maintenance/.test(entry.reason ?? ''),
          ),
      10_000,
    );
    await sleep(3000); // ten monitor cycles more
    assert.equal(writer(), 'db1', 'the writer role stays with the host in maintenance');
    assert.ok(
      !daemon.journal.read().some((entry) => entry.event === 'failover.decided'),
      'no failover was decided',
    );
    const [db2] = await sandbox.instance('db2').sql('SELECT @@read_only AS ro');
    assert.equal(Number(db2?.ro), 1, 'db2 stays read-only');

    // The operator expires the silence: maintenance ends, and the failover the evidence calls for happens.
    const expired = await fetch(`${alertmanager.url}/api/v2/silence/${silenceID}`, {
      method: 'DELETE',
    });
    assert.equal(expired.status, 200);
    await waitFor('the failover to db2', async () => writer() === 'db2', 30_000, 100);
    const journal = daemon.journal.read();
    const events = journal.map((entry) => `${entry.event}:${entry.host ?? ''}`);
    assert.ok(events.indexOf('maintenance.start:db1') >= 0);
    assert.ok(events.indexOf('maintenance.end:db1') > events.indexOf('maintenance.start:db1'));
    assert.ok(
      events.indexOf('failover.decided:db2') > events.indexOf('maintenance.end:db1'),
      'the failover came after the maintenance ended',
    );
    assert.match(
      await (await fetch(`${url}/metrics`)).text(),
      /switchyard_maintenance\{host="db1",cluster="sandbox"\} 0/,
    );
  },
);
