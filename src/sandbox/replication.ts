import { sqlString } from '../mysql/connect.js';
import type { MariaDbInstance } from './instance.js';

export interface ReplicationCredentials {
  user: string;
  password: string;
}

/** Points `replica` at `source` by GTID and starts it; used by the sandbox and the test bench. */
export async function replicateFrom(
  replica: MariaDbInstance,
  source: { host: string; port: number },
  credentials: ReplicationCredentials,
): Promise<void> {
  await replica.sql('STOP SLAVE');
  await replica.sql(
    `CHANGE MASTER TO MASTER_HOST=${sqlString(source.host)}, MASTER_PORT=${Number(source.port)}, ` +
      `MASTER_USER=${sqlString(credentials.user)}, MASTER_PASSWORD=${sqlString(credentials.password)}, ` +
      'MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1',
  );
  await replica.sql('START SLAVE');
}

/** Creates the manager and replication users locally (not replicated: every host gets its own). */
export async function createClusterUsers(
  instance: MariaDbInstance,
  manager: { user: string; password: string },
  replication: ReplicationCredentials,
): Promise<void> {
  const connection = await instance.rootConnection();
  try {
    await connection.query('SET SESSION sql_log_bin=0');
    await connection.query('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [
      manager.user,
      '%',
      manager.password,
    ]);
    await connection.query('GRANT ALL PRIVILEGES ON *.* TO ?@?', [manager.user, '%']);
    // ALL includes READ_ONLY ADMIN, which MariaDB 10.11 requires to SET GLOBAL read_only (SUPER is
    // not enough) and which also bypasses read_only: the manager must therefore only ever write
    // (heartbeat, checksums) on the host it has verified to be the writer.
    await connection.query('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [
      replication.user,
      '%',
      replication.password,
    ]);
    await connection.query(
      'GRANT REPLICATION SLAVE, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO ?@?',
      [replication.user, '%'],
    );
  } finally {
    connection.destroy();
  }
}

export async function waitForReplication(
  replica: MariaDbInstance,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const [status] = await replica.sql('SHOW SLAVE STATUS');
    if (status && status.Slave_IO_Running === 'Yes' && status.Slave_SQL_Running === 'Yes') return;
    last = status
      ? `IO=${String(status.Slave_IO_Running)} SQL=${String(status.Slave_SQL_Running)} ${String(status.Last_IO_Error ?? '')}${String(status.Last_SQL_Error ?? '')}`
      : 'no replication configured';
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`replication on ${replica.name} did not start: ${last}`);
}
