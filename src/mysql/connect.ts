import { connect as netConnect, isIP, type Socket } from 'node:net';
import mysql from 'mysql2/promise';
import { describeTlsError, mysqlTlsFor, sslOptions, type MysqlTls } from './tls.js';

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
  /** TLS for this connection; default: what registerMysqlTls() set for host:port. Never over a socket. */
  tls?: MysqlTls;
  /**
   * Several statements in one query (queryBatch). Only for connections whose every statement is
   * built from constants and validated names, never from input: the monitor's checks.
   */
  multipleStatements?: boolean;
}

/** One connection, not pooled: its owner decides how long it lives (src/monitor/check-connections.ts keeps the checks'). */
export async function openConnection(endpoint: Endpoint): Promise<Connection> {
  const tls = endpoint.socketPath
    ? undefined
    : (endpoint.tls ?? mysqlTlsFor(endpoint.host, endpoint.port));
  try {
    return closeSocketOnDestroy(await createConnection(endpoint, tls));
  } catch (error) {
    throw tls ? describeTlsError(error as Error, endpoint.host, endpoint.port) : error;
  }
}

/**
 * mysql2's destroy() only half-closes the socket (end()). To a host that vanished, the FIN and any
 * unsent bytes then wait for TCP's retransmission timeout (many minutes), and the open handle keeps
 * the process alive that long: a daemon that could not stop, sockets piling up per silent host.
 * Destroying the socket too closes it now.
 */
function closeSocketOnDestroy(connection: Connection): Connection {
  const inner = (connection as unknown as { connection?: { stream?: { destroy(): void } } })
    .connection;
  const destroy = connection.destroy.bind(connection);
  connection.destroy = () => {
    destroy();
    inner?.stream?.destroy();
  };
  return connection;
}

/**
 * The TCP socket for a TLS connection to an IP address. mysql2 sends no server name for an IP,
 * and node then checks the certificate against "localhost" (it takes the name from the socket's
 * `_host`, which net sets only after a DNS lookup): with the address recorded there the check is
 * against the address connected to. Should node stop reading `_host`, the check fails closed.
 */
function socketFor(host: string, port: number): Socket {
  const socket = netConnect(port, host);
  (socket as Socket & { _host?: string })._host = host;
  socket.setNoDelay(true);
  socket.setKeepAlive(true);
  return socket;
}

function createConnection(endpoint: Endpoint, tls: MysqlTls | undefined): Promise<Connection> {
  const ip = endpoint.host !== undefined && isIP(endpoint.host) !== 0;
  return mysql.createConnection({
    ...(tls ? { ssl: sslOptions(tls) } : {}),
    ...(tls && ip
      ? { stream: () => socketFor(endpoint.host as string, endpoint.port ?? 3306) }
      : {}),
    host: endpoint.host,
    port: endpoint.port,
    socketPath: endpoint.socketPath,
    user: endpoint.user,
    password: endpoint.password,
    database: endpoint.database,
    connectTimeout: endpoint.connectTimeoutMs ?? 2000,
    multipleStatements: endpoint.multipleStatements === true,
    // mysql2 captures a stack trace for every query by default (an Error per query, most of a
    // check's own cost with hundreds of checks a second); its errors carry their message anyway.
    trace: false,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    // mysql2 sizes each connection's prepared-statement LRU up front (16000 slots by default:
    // about 1 MB per connection). Our connections prepare little, and with
    // dozens of hosts checked every second that garbage dominated the manager's memory.
    maxPreparedStatements: 16,
  });
}

export async function queryRows<T = Record<string, unknown>>(
  connection: Connection,
  sql: string,
  values?: unknown[],
): Promise<T[]> {
  const [rows] = await connection.query<RowData[]>(sql, values);
  return rows as unknown as T[];
}

/** What queryBatch gives: `first` settles when the server answered the first statement. */
export interface Batch {
  first: Promise<void>;
  results: Promise<RowData[][]>;
}

/**
 * Statements sent in one round trip on a connection opened with `multipleStatements`, each
 * statement's rows in order. `first` settles as soon as the first statement's answer arrives
 * (or the batch ends): a liveness proof as good as a `SELECT 1` of its own. A statement that
 * fails fails the batch; the ones after it are not run.
 */
export function queryBatch(connection: Connection, statements: readonly string[]): Batch {
  const core = (connection as unknown as { connection: CoreConnection }).connection;
  let answered!: () => void;
  const first = new Promise<void>((resolve) => {
    answered = resolve;
  });
  const results = new Promise<RowData[][]>((resolve, reject) => {
    const query = core.query(statements.join(';\n'), (error: Error | null, rows: unknown) => {
      answered();
      if (error) reject(error);
      else resolve(statements.length === 1 ? [rows as RowData[]] : (rows as RowData[][]));
    });
    query.once('fields', answered);
  });
  return { first, results };
}

interface CoreConnection {
  query(
    sql: string,
    callback: (error: Error | null, rows: unknown) => void,
  ): { once(event: 'fields', listener: () => void): void };
}

export async function withConnection<T>(
  endpoint: Endpoint,
  work: (connection: Connection) => Promise<T>,
): Promise<T> {
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
