import type { ReplicationStatus } from '../domain/observation.js';

/**
 * The one place that knows how MariaDB and MySQL name the same things. MariaDB 10.x answers
 * SHOW SLAVE STATUS with Slave_/Master_ columns and Gtid_IO_Pos; MySQL 8.0.22+ answers SHOW
 * REPLICA STATUS with Replica_/Source_ columns and GTID sets. Only MariaDB runs in this
 * project's tests; the MySQL side is tested on captured rows.
 */
export type Flavor = 'mariadb' | 'mysql';

export function flavorOf(version: string): Flavor {
  return /mariadb/i.test(version) ? 'mariadb' : 'mysql';
}

export function replicationStatusQuery(flavor: Flavor): string {
  return flavor === 'mariadb' ? 'SHOW SLAVE STATUS' : 'SHOW REPLICA STATUS';
}

type Row = Record<string, unknown>;

function pick(row: Row, ...names: string[]): unknown {
  for (const name of names) if (name in row && row[name] !== undefined) return row[name];
  return undefined;
}

function text(value: unknown): string {
  return value === null || value === undefined ? '' : String(value);
}

function numberOrNull(value: unknown): number | null {
  if (value === null || value === undefined || value === '') return null;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : null;
}

/** Parses one status row; undefined when replication is not configured (empty result). */
export function parseReplicationStatus(row: Row | undefined): ReplicationStatus | undefined {
  if (!row || Object.keys(row).length === 0) return undefined;
  const io = text(pick(row, 'Slave_IO_Running', 'Replica_IO_Running'));
  const sql = text(pick(row, 'Slave_SQL_Running', 'Replica_SQL_Running'));
  const readFile = text(pick(row, 'Master_Log_File', 'Source_Log_File'));
  const readPos = numberOrNull(pick(row, 'Read_Master_Log_Pos', 'Read_Source_Log_Pos'));
  const execFile = text(pick(row, 'Relay_Master_Log_File', 'Relay_Source_Log_File'));
  const execPos = numberOrNull(pick(row, 'Exec_Master_Log_Pos', 'Exec_Source_Log_Pos'));
  // MariaDB: Gtid_IO_Pos is what was received. MySQL: Retrieved_Gtid_Set.
  const gtidIoPos = text(pick(row, 'Gtid_IO_Pos', 'Retrieved_Gtid_Set')).replace(/\s+/g, '');
  return {
    masterHost: text(pick(row, 'Master_Host', 'Source_Host')),
    masterPort: Number(pick(row, 'Master_Port', 'Source_Port') ?? 0),
    ioRunning: io === 'Yes',
    sqlRunning: sql === 'Yes',
    ioState:
      io === 'Connecting'
        ? 'Connecting'
        : text(pick(row, 'Slave_IO_State', 'Replica_IO_State')) || io,
    lastIoError: text(pick(row, 'Last_IO_Error')),
    lastSqlError: text(pick(row, 'Last_SQL_Error')),
    secondsBehindMaster: numberOrNull(pick(row, 'Seconds_Behind_Master', 'Seconds_Behind_Source')),
    gtidIoPos,
    relayBacklog:
      readPos !== null && execPos !== null && (readFile !== execFile || readPos > execPos),
  };
}
