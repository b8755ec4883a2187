import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readSecret } from '../../src/config/secrets.js';
import { openConnection, queryRows } from '../../src/mysql/connect.js';
import { MARIADB, requireBinaries } from '../support/binaries.js';
import { FAST_MONITOR, startDaemon, writeTestConfig } from '../support/daemon.js';
import { startSandbox, waitFor } from '../support/sandbox.js';
import { makeTestCa, OPENSSL } from '../support/test-ca.js';

test('MariaDB with require_secure_transport: monitor, read_only flips and repointed replication over TLS; a wrong server name is refused with verify_identity', async (t) => {
  if (!requireBinaries(t, MARIADB) || !requireBinaries(t, OPENSSL)) return;
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-mysql-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await makeTestCa(dir, 'mysql');
  const server = await ca.issue('mariadb', { cn: 'mariadb', ips: ['127.0.0.1'], dns: [] });
  const sandbox = await startSandbox(t, {
    masters: 2,
    replicas: 1,
    extraSettings: { ssl_cert: server.cert, ssl_key: server.key, ssl_ca: ca.cert },
  });
  const names = ['db1', 'db2', 'db3'];
  // The sandbox wired replication in plaintext; move it to TLS, then refuse plaintext TCP clients.
  for (const name of names) {
    const instance = sandbox.instance(name);
    if ((await instance.sql('SHOW SLAVE STATUS')).length === 0) continue;
    await instance.sql('STOP SLAVE');
    await instance.sql(`CHANGE MASTER TO MASTER_SSL=1, MASTER_SSL_CA='${ca.cert}'`);
    await instance.sql('START SLAVE');
  }
  const password = readSecret({ file: join(sandbox.dir, 'mysql.pass') }, 'mysql');
  const port = sandbox.config.hosts.db1?.port as number;
  (await openConnection({ host: '127.0.0.1', port, user: 'switchyard', password })).destroy(); // the password is right
  for (const name of names)
    await sandbox.instance(name).sql('SET GLOBAL require_secure_transport=ON');
  await assert.rejects(
    openConnection({ host: '127.0.0.1', port, user: 'switchyard', password }).then((connection) =>
      connection.destroy(),
    ),
    /insecure transport|Access denied/i, // MariaDB 10.11 answers a plaintext login under require_secure_transport with "Access denied"
    'a plaintext client is refused, so whatever works below went over TLS',
  );

  const config = writeTestConfig(sandbox, 'mysql-tls.yml', (raw) => {
    raw.monitor = FAST_MONITOR;
    raw.mysql.tls = { ca_file: ca.cert, verify_identity: true, replication: true };
  });
  const { daemon, url } = await startDaemon(t, config, 'mysql-tls-daemon.log');
  await waitFor(
    'every host ONLINE, checked over TLS',
    async () =>
      names.every(
        (name) => daemon.status().hosts.find((host) => host.name === name)?.state === 'ONLINE',
      ),
    20_000,
  ).catch((error) => {
    console.error(
      JSON.stringify(daemon.status().hosts.map((host) => [host.name, host.state, host.reason])),
      JSON.stringify(daemon.status().checks),
    );
    throw error;
  });
  const cipher = await openConnection({
    host: '127.0.0.1',
    port,
    user: 'switchyard',
    password,
  }).then(async (connection) => {
    try {
      return (
        await queryRows<{ Value: string }>(connection, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")
      )[0]?.Value;
    } finally {
      connection.destroy();
    }
  });
  assert.ok(cipher, "the manager's connections to a registered host use TLS");

  // read_only flips (db1 fenced, db2 made writable) and db3 repointed with MASTER_SSL.
  const token = readSecret({ file: config.auth.token_file }, 'token');
  const moved = await fetch(`${url}/api/v1/roles/writer/move`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ host: 'db2' }),
  });
  assert.equal(moved.status, 200, await moved.text());
  const readOnly = async (name: string) =>
    Number((await sandbox.instance(name).sql('SELECT @@read_only AS ro'))[0]?.ro);
  assert.equal(await readOnly('db2'), 0);
  assert.equal(await readOnly('db1'), 1);
  const db3 = (await sandbox.instance('db3').sql('SHOW SLAVE STATUS'))[0] as Record<
    string,
    unknown
  >;
  assert.equal(Number(db3.Master_Port), sandbox.config.hosts.db2?.port);
  assert.equal(db3.Master_SSL_Allowed, 'Yes', 'the repoint set MASTER_SSL=1');
  assert.equal(db3.Master_SSL_CA_File, ca.cert);
  await waitFor(
    'db3 to replicate from db2 over TLS',
    async () => {
      const status = (await sandbox.instance('db3').sql('SHOW SLAVE STATUS'))[0] as Record<
        string,
        unknown
      >;
      return status.Slave_IO_Running === 'Yes' && status.Slave_SQL_Running === 'Yes';
    },
    10_000,
  );
  await daemon.stop();

  // A certificate that does not name 127.0.0.1: refused with verify_identity, with a message that says so.
  const elsewhere = await ca.issue('mariadb-elsewhere', {
    cn: 'elsewhere',
    ips: [],
    dns: ['db1.elsewhere.test'],
  });
  copyFileSync(elsewhere.cert, server.cert);
  copyFileSync(elsewhere.key, server.key);
  await sandbox.instance('db1').sql('FLUSH SSL');
  const tls = { ca_file: ca.cert, verify_identity: true, replication: false };
  await assert.rejects(
    openConnection({ host: '127.0.0.1', port, user: 'switchyard', password, tls }),
    (error: Error) => {
      t.diagnostic(error.message);
      assert.match(
        error.message,
        /TLS to 127\.0\.0\.1:\d+ refused: the server's certificate does not name 127\.0\.0\.1 \(mysql\.tls\.verify_identity is on\)/,
      );
      return true;
    },
  );
  const unverified = await openConnection({
    host: '127.0.0.1',
    port,
    user: 'switchyard',
    password,
    tls: { ...tls, verify_identity: false },
  });
  unverified.destroy();
  const stranger = await makeTestCa(dir, 'stranger');
  await assert.rejects(
    openConnection({
      host: '127.0.0.1',
      port,
      user: 'switchyard',
      password,
      tls: { ...tls, ca_file: stranger.cert, verify_identity: false },
    }),
    /TLS to 127\.0\.0\.1:\d+ refused: the server's certificate is not signed by mysql\.tls\.ca_file/,
  );
});
