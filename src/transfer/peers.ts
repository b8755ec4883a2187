import type { LoadedConfig } from '../config/load.js';
import { contains, formatPosition, mergePositions, parsePosition } from '../mysql/gtid.js';
import { queryRows, sqlString, type Connection } from '../mysql/connect.js';

/** MariaDB's fatal "could not find / not in the master's binlog" on connecting: the IO thread stops for good. */
const ER_MASTER_FATAL_READING_BINLOG = 1236;

export interface PeerReconnect {
  host: string;
  /** What happened, for the job's notes and the journal. */
  note: string;
  ok: boolean;
}

interface SlaveRow {
  Master_Host?: string;
  Master_Port?: number | string;
  Slave_IO_Running?: string;
  Slave_SQL_Running?: string;
  Last_IO_Errno?: number | string;
  Last_IO_Error?: string;
  Using_Gtid?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * After `target` restarted on a copy, hosts that replicate FROM it (in master-master, the
 * writer's channel back from the passive master) reconnect as soon as it answers and ask for
 * their own position, which the copy reaches only once it has caught up with the writer. The
 * copy has no binlog before its own position either. Either way MariaDB answers 1236 and the
 * peer's IO thread stops for good (no retry), so the ring stays broken, and stays broken when the
 * reseeded host later becomes the writer. Here each such peer (IO thread stopped by 1236, SQL
 * thread running) waits until the target has what it asks for (its gtid_slave_pos, or gtid_current_pos with
 * MASTER_USE_GTID=current_pos), then its IO thread is started again. Peers replicating fine are
 * left alone.
 */
export async function reconnectPeers(
  config: LoadedConfig,
  target: string,
  connect: (host: string) => Promise<Connection>,
  options: { timeoutMs?: number; pollMs?: number } = {},
): Promise<PeerReconnect[]> {
  const targetHost = config.hosts[target];
  if (!targetHost) return [];
  const results: PeerReconnect[] = [];
  for (const host of Object.keys(config.hosts)) {
    if (host === target) continue;
    let peer: Connection | undefined;
    try {
      peer = await connect(host);
      const [row] = await queryRows<SlaveRow>(peer, 'SHOW SLAVE STATUS');
      // Only a channel whose IO thread died of 1236 while its SQL thread runs: replication that
      // the engine or an operator stopped on purpose (both threads off) is none of this.
      if (
        !row ||
        row.Master_Host !== targetHost.address ||
        Number(row.Master_Port) !== targetHost.port ||
        row.Slave_IO_Running !== 'No' ||
        row.Slave_SQL_Running !== 'Yes' ||
        Number(row.Last_IO_Errno) !== ER_MASTER_FATAL_READING_BINLOG
      )
        continue;
      // Like the actuator's repoint: a peer's own writes are in its binlog but not in its
      // gtid_slave_pos (the writer's, filtered when they come back around the ring). Asking from
      // the merged position asks for nothing it already has, so a copy whose binlog starts after
      // the stale slave position can still serve it.
      const currentPos = String(row.Using_Gtid).toLowerCase() === 'current_pos';
      const [positions] = await queryRows<{ binlog: string; slave: string }>(
        peer,
        'SELECT @@global.gtid_binlog_pos AS binlog, @@global.gtid_slave_pos AS slave',
      );
      const slavePos = String(positions?.slave ?? '');
      const wanted = formatPosition(mergePositions(String(positions?.binlog ?? ''), slavePos));
      const why = `it had stopped with ${ER_MASTER_FATAL_READING_BINLOG} (${String(row.Last_IO_Error).slice(0, 160)})`;
      if (!(await caughtUp(target, connect, wanted, options))) {
        results.push({
          host,
          ok: false,
          note: `${host} replicates from ${target} but ${why}, and ${target} did not reach ${host}'s position ${wanted} within ${(options.timeoutMs ?? 60_000) / 1000} s (errant transactions on ${host}?): left as it is`,
        });
        continue;
      }
      await peer.query('STOP SLAVE');
      const moved = !currentPos && formatPosition(parsePosition(slavePos)) !== wanted;
      if (moved) await peer.query(`SET GLOBAL gtid_slave_pos = ${sqlString(wanted)}`);
      await peer.query('START SLAVE');
      const running = await ioRunning(peer, options);
      results.push({
        host,
        ok: running.ok,
        note: running.ok
          ? `restarted ${host}'s replication from ${target} once ${target} had ${wanted}${moved ? ` (gtid_slave_pos moved from ${slavePos || '(empty)'} to ${wanted}, which ${host} has in its binlog)` : ''}; ${why}`
          : `${host}'s replication from ${target} did not start again: ${running.error}`,
      });
    } catch (error) {
      results.push({
        host,
        ok: false,
        note: `could not check ${host}'s replication from ${target}: ${(error as Error).message}`,
      });
    } finally {
      peer?.destroy();
    }
  }
  return results;
}

/** Polls until everything `position` names is in the target's binlog or replication position. */
async function caughtUp(
  target: string,
  connect: (host: string) => Promise<Connection>,
  position: string,
  options: { timeoutMs?: number; pollMs?: number },
): Promise<boolean> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const connection = await connect(target);
  try {
    for (;;) {
      const [row] = await queryRows<{ binlog: string; slave: string }>(
        connection,
        'SELECT @@global.gtid_binlog_pos AS binlog, @@global.gtid_slave_pos AS slave',
      );
      if (contains(mergePositions(row?.binlog ?? '', row?.slave ?? ''), position)) return true;
      if (Date.now() > deadline) return false;
      await sleep(options.pollMs ?? 250);
    }
  } finally {
    connection.destroy();
  }
}

/** Waits up to 10 s for the IO thread to connect; a 1236 answer stops it at once, so this is quick either way. */
async function ioRunning(
  peer: Connection,
  options: { pollMs?: number },
): Promise<{ ok: boolean; error?: string }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [row] = await queryRows<SlaveRow>(peer, 'SHOW SLAVE STATUS');
    if (row?.Slave_IO_Running === 'Yes') return { ok: true };
    if (row?.Slave_IO_Running === 'No' || Date.now() > deadline)
      return {
        ok: false,
        error: `IO thread ${String(row?.Slave_IO_Running)}: ${String(row?.Last_IO_Errno)} ${String(row?.Last_IO_Error)}`,
      };
    await sleep(options.pollMs ?? 250);
  }
}
