import mysql from 'mysql2/promise';

export type Connection = mysql.Connection;
export type RowData = mysql.RowDataPacket;

export interface Endpoint {
  host?: string;
  port?: number;
  socketPath?: string;
  user: string;
  password?: string;
  connectTimeoutMs?: number;
  database?: string;
}

/** One short-lived connection; the monitor opens its own per check so a hung session never blocks the next cycle. */
export async function openConnection(endpoint: Endpoint): Promise<Connection> {
  return mysql.createConnection({
    host: endpoint.host,
    port: endpoint.port,
    socketPath: endpoint.socketPath,
    user: endpoint.user,
    password: endpoint.password,
    database: endpoint.database,
    connectTimeout: endpoint.connectTimeoutMs ?? 2000,
    multipleStatements: false,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    // mysql2 sizes each connection's prepared-statement LRU up front (16000 slots by default:
    // about 1 MB per connection). Our connections are short-lived and prepare little, and with
    // dozens of hosts checked every second that garbage dominated the manager's memory.
    maxPreparedStatements: 16,
  });
}

export async function queryRows<T = Record<string, unknown>>(connection: Connection, sql: string, values?: unknown[]): Promise<T[]> {
  const [rows] = await connection.query<RowData[]>(sql, values);
  return rows as unknown as T[];
}

export async function withConnection<T>(endpoint: Endpoint, work: (connection: Connection) => Promise<T>): Promise<T> {
  const connection = await openConnection(endpoint);
  try {
    return await work(connection);
  } finally {
    connection.destroy();
  }
}

/** Quotes a literal for the few statements (CHANGE MASTER) that do not accept placeholders. */
export function sqlString(value: string): string {
  return mysql.escape(value);
}
