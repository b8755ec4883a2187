import { queryRows } from '../mysql/connect.js';
import { findServerProcess } from './server-process.js';
import { openLocal, type LocalFence, type LocalMysql } from './local-fence.js';

/** Whether this agent can fence its server when it must, checked before it must. */
export interface FenceReadiness {
  ready: boolean;
  /** One line: what works, or what is missing and how to fix it. */
  detail: string;
  checkedAt: number;
}

const ER_ACCESS_DENIED = 1045;
/** MariaDB 10.11: SET GLOBAL read_only needs READ_ONLY ADMIN (SUPER is not enough). */
const READ_ONLY_PRIVILEGES = ['READ_ONLY ADMIN'];
/** KILL of other users' sessions: CONNECTION ADMIN, or SUPER. */
const KILL_PRIVILEGES = ['CONNECTION ADMIN', 'SUPER'];

/**
 * Logs in as the fence will and checks the privileges it needs (READ_ONLY ADMIN to set read_only,
 * CONNECTION ADMIN or SUPER to kill sessions), and that the escalation has a server process to
 * stop. Learns the server's pid file on the way, so a later escalation finds the process even when
 * its port is closed. Never changes anything.
 */
export async function checkFenceReadiness(
  mysql: LocalMysql | undefined,
  fence: LocalFence,
  now: () => number = Date.now,
): Promise<FenceReadiness> {
  const at = now();
  const escalation = fence.escalation;
  if (!mysql) {
    return {
      ready: false,
      detail:
        'no mysql section: if this host is the writer and gets cut off, its lease can only take the VIP down; read_only cannot be set and nothing is proved',
      checkedAt: at,
    };
  }
  const problems: string[] = [];
  try {
    const connection = await openLocal(mysql, 2000);
    try {
      const granted = await queryRows<{ PRIVILEGE_TYPE: string }>(
        connection,
        `SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES
          WHERE GRANTEE = CONCAT("'", SUBSTRING_INDEX(CURRENT_USER(), '@', 1), "'@'",
                                 SUBSTRING_INDEX(CURRENT_USER(), '@', -1), "'")`,
      );
      const privileges = new Set(granted.map((row) => row.PRIVILEGE_TYPE));
      if (!READ_ONLY_PRIVILEGES.some((name) => privileges.has(name)))
        problems.push(`${mysql.user} lacks READ_ONLY ADMIN (needed for SET GLOBAL read_only)`);
      if (!KILL_PRIVILEGES.some((name) => privileges.has(name)))
        problems.push(`${mysql.user} lacks CONNECTION ADMIN (needed to kill client sessions)`);
      const [row] = await queryRows<{ pid_file: string | null }>(
        connection,
        'SELECT @@global.pid_file AS pid_file',
      );
      fence.learnPidFile(row?.pid_file ?? undefined);
    } finally {
      connection.destroy();
    }
  } catch (error) {
    const errno = (error as { errno?: number }).errno;
    const hint =
      errno === ER_ACCESS_DENIED
        ? mysql.socketPath
          ? ` (over the socket: an anonymous ''@'localhost' account, which a default mariadb-install-db creates, shadows ${mysql.user}@'%': DROP USER ''@'localhost'; or the password file is stale)`
          : ' (the password file may be stale)'
        : '';
    problems.push(`cannot log in as ${mysql.user}: ${(error as Error).message}${hint}`);
  }
  if (problems.length === 0)
    return {
      ready: true,
      detail: `login as ${mysql.user} works with READ_ONLY ADMIN and CONNECTION ADMIN`,
      checkedAt: at,
    };
  // A failed read_only fence still ends proved when the escalation can stop the server.
  const server = escalation === 'kill' ? await findServerProcess(fence.location()) : undefined;
  const fallback =
    escalation === 'none'
      ? 'fence.escalate is none: a fence would fail and the server keep running'
      : escalation === 'kill'
        ? server
          ? `a fence would have to stop the server (kill of ${server.name} ${server.pid})`
          : 'and no server process was found to stop'
        : 'a fence would have to stop the server through fence.stop';
  return { ready: false, detail: `${problems.join('; ')}; ${fallback}`, checkedAt: at };
}
