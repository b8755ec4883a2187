import { queryRows, type Connection } from './connect.js';

/** Replication and server threads: never killed when a host is fenced. */
const PROTECTED_COMMANDS = new Set([
  'Binlog Dump',
  'Binlog Dump GTID',
  'Daemon',
  'Slave_IO',
  'Slave_SQL',
  'Slave_worker',
]);
const PROTECTED_USERS = new Set(['system user', 'event_scheduler', 'unauthenticated user']);
const ER_NO_SUCH_THREAD = 1094;

export interface KilledSession {
  id: number;
  user: string;
  host: string;
  command: string;
}

/**
 * Kills every session that is neither ours (this connection, `spareIds`), replication, nor the
 * server's own; returns what it killed.
 */
export async function killClientSessions(
  connection: Connection,
  protectedUsers: Set<string>,
  spareIds: ReadonlySet<number> = new Set(),
): Promise<KilledSession[]> {
  const [self] = await queryRows<{ id: string | number }>(
    connection,
    'SELECT CONNECTION_ID() AS id',
  );
  const ownId = Number(self?.id);
  const sessions = await queryRows<{
    ID: string | number;
    USER: string;
    HOST: string;
    COMMAND: string;
  }>(connection, 'SELECT ID, USER, HOST, COMMAND FROM information_schema.PROCESSLIST');
  const killed: KilledSession[] = [];
  for (const session of sessions) {
    const id = Number(session.ID);
    if (
      id === ownId ||
      spareIds.has(id) ||
      protectedUsers.has(session.USER) ||
      PROTECTED_USERS.has(session.USER) ||
      PROTECTED_COMMANDS.has(session.COMMAND)
    )
      continue;
    try {
      await connection.query(`KILL CONNECTION ${id}`);
      killed.push({ id, user: session.USER, host: session.HOST, command: session.COMMAND });
    } catch (error) {
      // The session ended between the listing and the kill: that is the outcome we wanted.
      if ((error as { errno?: number }).errno !== ER_NO_SUCH_THREAD) throw error;
    }
  }
  return killed;
}
