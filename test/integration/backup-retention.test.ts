import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { createAgentApp } from '../../src/agent/server.js';
import { validateAgentConfig, type AgentConfig } from '../../src/agent/config.js';
import { BACKUP_META, takeBackup, type BackupInfo } from '../../src/backup/backup.js';
import { readCatalogue } from '../../src/backup/catalogue.js';
import { silentLogger } from '../../src/log.js';
import type { FleetListing } from '../../src/transfer/backup-catalogues.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { startDaemon, writeTestConfig } from '../support/daemon.js';
import { MemoryVipDriver, serveAgent } from '../support/memory-agent.js';
import { startSandbox } from '../support/sandbox.js';
import { cli } from '../support/transfer-tests.js';

const DAY = 86_400_000;

test(
  'retention after each backup (max_age, keep_full, incrementals with their full), in backup.dir and in an agent backup_dir; backup --list and the age metric see both',
  { timeout: 120_000 },
  async (t) => {
    if (!requireBinaries(t, [...MARIADB, ['mariadb-backup', 'mariadb-backup']])) return;
    const started = Date.now();
    const sandbox = await startSandbox(t, { masters: 1, replicas: 1 });
    const token = readFileSync(join(sandbox.dir, 'token'), 'utf8').trim();

    // db2's agent keeps backups in its snapshot.backup_dir (as after `backup db2 --to-agent db2`).
    process.env.SWITCHYARD_TEST_AGENT_PASSWORD = 'unused';
    t.after(() => delete process.env.SWITCHYARD_TEST_AGENT_PASSWORD);
    const agentDir = mkdtempSync(join(tmpdir(), 'switchyard-agent-backups-'));
    t.after(() => rmSync(agentDir, { recursive: true, force: true }));
    const { config: agentConfig, problems } = validateAgentConfig(
      {
        listen: '127.0.0.1:0',
        auth: { token_env: 'UNUSED_TOKEN' },
        // Read when an offer is made, not used: a stored backup is sent without the server.
        mysql: { user: 'root', password_env: 'SWITCHYARD_TEST_AGENT_PASSWORD' },
        snapshot: {
          method: 'mariabackup',
          path: join(dirname(sandbox.instance('db2').configFile), 'data'),
          backup_dir: agentDir,
        },
      },
      join(sandbox.dir, 'agent.yml'),
    );
    assert.deepEqual(problems, []);
    const agentUrl = await serveAgent(
      t,
      createAgentApp({
        config: agentConfig as AgentConfig,
        driver: new MemoryVipDriver(),
        getToken: () => token,
        logger: silentLogger,
      }),
    );

    const config = writeTestConfig(sandbox, 'retention.yml', (raw) => {
      raw.backup = { dir: 'backups', retention: { keep_full: 2, max_age: '20d' } };
      raw.hosts.db2.agent = agentUrl;
      // Only the backup API of the agent is under test: no VIPs to move.
      for (const role of Object.values(raw.roles as Record<string, { ips?: string[] }>))
        delete role.ips;
    });
    const { daemon, url } = await startDaemon(t, config);
    const catalogues = daemon.backupCatalogues;
    const db1 = sandbox.instance('db1');
    await db1.sql('CREATE DATABASE app');
    await db1.sql('CREATE TABLE app.t (id INT PRIMARY KEY)');

    // Backups of db2 dated in the past, each followed by retention as the daemon runs it.
    const backupAt = async (daysAgo: number, incremental = false) => {
      const info = await takeBackup(
        config,
        'db2',
        { incremental },
        { now: () => new Date(Date.now() - daysAgo * DAY) },
      );
      const note = await catalogues.pruneAfterBackup('db2', 'manager');
      return { info, note, id: `db2/${info.path.split('/').pop()}` };
    };
    const ids = () => readCatalogue(join(sandbox.dir, 'backups'), 'db2').entries.map((e) => e.id);
    const a = await backupAt(30);
    const a1 = await backupAt(29, true);
    assert.equal(a1.info.kind, 'incremental');
    assert.equal(a1.note, undefined, 'one full backup: nothing to prune');
    const b = await backupAt(10);
    assert.match(b.note ?? '', /retention removed .*older than max_age/);
    assert.deepEqual(ids(), [b.id], 'the chain older than max_age went, its incremental first');
    const c = await backupAt(1);
    const d = await backupAt(0);
    assert.match(d.note ?? '', new RegExp(`${b.id} \\(beyond keep_full 2`));
    assert.deepEqual(ids(), [c.id, d.id]);
    const prunes = daemon.journal.read().filter((entry) => entry.event === 'backup.prune');
    assert.deepEqual(
      prunes.map((entry) => [entry.phase, entry.outcome ?? null, entry.inputs?.remove ?? null]),
      [
        ['before', null, [a1.id, a.id]],
        ['after', 'ok', null],
        ['before', null, [b.id]],
        ['after', 'ok', null],
      ],
    );

    // The agent's catalogue: three full copies, the oldest dated 5 days back.
    const copy = (from: BackupInfo, name: string, createdAt?: string) => {
      const path = join(agentDir, 'db2', name);
      cpSync(from.path, path, { recursive: true });
      if (createdAt)
        writeFileSync(
          join(path, BACKUP_META),
          JSON.stringify({ ...from, path, createdAt }, null, 2),
        );
      return `db2/${name}`;
    };
    const old = copy(c.info, 'old-full', new Date(Date.now() - 5 * DAY).toISOString());
    copy(c.info, 'c-full');
    copy(d.info, 'd-full');
    const agentPrune = await catalogues.pruneAfterBackup('db2', 'db2');
    assert.match(agentPrune ?? '', new RegExp(`retention removed ${old} .* kept by db2`));
    assert.ok(!existsSync(join(agentDir, old)));

    // A backup the agent has offered to a restore is refused to the prune and stays.
    const older = copy(c.info, 'older-full', new Date(Date.now() - 6 * DAY).toISOString());
    const offer = await fetch(`${agentUrl}/api/v1/transfers/offers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ backup: older }),
    });
    assert.equal(offer.status, 201, await offer.clone().text());
    const refused = await catalogues.pruneAfterBackup('db2', 'db2');
    assert.match(refused ?? '', /removing db2\/older-full kept by db2 failed: .*in use/);
    assert.ok(existsSync(join(agentDir, older)));
    // Traversal through the agent's delete route reaches nothing.
    const traversal = await fetch(`${agentUrl}/api/v1/backups/..%2F..%2Fetc/passwd`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(traversal.status, 400);

    // backup --list through the daemon: both catalogues, as JSON and as a table.
    const tokenFile = join(sandbox.dir, 'token');
    const listed = await cli([
      'backup',
      '--list',
      '--json',
      '--url',
      url,
      '--token-file',
      tokenFile,
    ]);
    assert.equal(listed.code, 0, listed.stderr);
    const listing = JSON.parse(listed.stdout) as FleetListing;
    assert.deepEqual(
      listing.backups.map((backup) => `${backup.keptBy} ${backup.id}`).sort(),
      [
        `db2 db2/c-full`,
        `db2 db2/d-full`,
        `db2 ${older}`,
        `manager ${c.id}`,
        `manager ${d.id}`,
      ].sort(),
    );
    assert.ok(listing.sources.every((source) => source.ok));
    const table = await cli(['backup', '--list', 'db2', '--url', url, '--token-file', tokenFile]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /HOST +│? *KEPT BY/);
    assert.match(table.stdout, new RegExp(`db2 .*manager .*${d.id}`));
    const none = await cli(['backup', '--list', 'db1', '--url', url, '--token-file', tokenFile]);
    assert.equal(none.stdout, 'no backups\n');

    // switchyard_backup_age_seconds: the newest restorable full backup of db2 (just taken).
    await catalogues.refresh();
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const age = Number(/switchyard_backup_age_seconds\{host="db2"[^}]*\} (\S+)/.exec(metrics)?.[1]);
    assert.ok(age >= 0 && age < 300, `age ${age}`);
    t.diagnostic(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  },
);
