import { killClientSessions } from '../mysql/sessions.js';
import { openConnection } from '../mysql/connect.js';

/** How the agent reaches the MySQL server on its own host (agent file, `mysql`). */
export interface LocalMysql {
  socketPath?: string;
  address: string;
  port: number;
  user: string;
  password: () => string;
}

/**
 * Fences the local server without the manager: read_only=ON, then every client session killed
 * (replication threads and this agent's own session are spared). A server that refuses the
 * connection is not running, which is as fenced as it gets: it restarts read-only by its my.cnf.
 */
export async function fenceLocalMysql(mysql: LocalMysql | undefined): Promise<string> {
  if (!mysql) return 'no local mysql configured: read_only not changed';
  let connection;
  try {
    connection = await openConnection({
      socketPath: mysql.socketPath,
      host: mysql.address,
      port: mysql.port,
      user: mysql.user,
      password: mysql.password(),
      connectTimeoutMs: 1000,
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED' || code === 'ENOENT') return 'mysqld is not running';
    throw error;
  }
  try {
    await connection.query('SET GLOBAL read_only=ON');
    const killed = await killClientSessions(connection, new Set([mysql.user]));
    return `read_only=ON, ${killed.length} client session(s) killed`;
  } finally {
    connection.destroy();
  }
}
