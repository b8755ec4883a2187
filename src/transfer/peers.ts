import type { LoadedConfig } from '../config/load.js';
import { contains, formatPosition, mergePositions } from '../mysql/gtid.js';
import { readPositions } from '../mysql/positions.js';
import { queryRows, type Connection } from '../mysql/connect.js';
import { moveToServablePosition } from '../mysql/start-position.js';

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
 * After `target` restarted on a copy, the hosts that replicate FROM it (in master-master, the
 * writer's channel back from the rebuilt peer) still hold the gtid_slave_pos they had before. The
 * copy's binlog holds nothing from before the copy, so a peer asking from an older GTID gets 1236
 * and its IO thread stops for good: at once if it is running, or later, when the engine starts it
 * again (set-online), when the peer restarts, or when the rebuilt host is promoted and the peer
 * returns. Here every channel from `target` whose start position is not everything the peer has
 * is moved there once `target` has it (mysql/start-position.ts): a channel that was running, or
 * whose IO thread died of 1236, runs again; one stopped on purpose (both threads off) stays
 * stopped, with a position it can start from later. Channels that already start from everything
 * their host has and run are left alone.
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
      if (
        !row ||
        row.Master_Host !== targetHost.address ||
        Number(row.Master_Port) !== targetHost.port
      )
        continue;
      const died =
        row.Slave_IO_Running === 'No' &&
        Number(row.Last_IO_Errno) === ER_MASTER_FATAL_READING_BINLOG;
      // Stopped on purpose (the engine after a failover, or an operator): both threads off, no 1236.
      const stoppedOnPurpose =
        row.Slave_IO_Running === 'No' && row.Slave_SQL_Running === 'No' && !died;
      const currentPos = String(row.Using_Gtid).toLowerCase() === 'current_pos';
      const positions = await readPositions(peer);
      const slavePos = formatPosition(positions.slave);
      // Everything the peer has: what it asks for from now on (with current_pos the server does
      // this itself), so a copy whose binlog starts after the stale slave position can serve it.
      const wanted = formatPosition(mergePositions(positions.binlog, positions.slave));
      const stale = !currentPos && wanted !== slavePos;
      if (!died && !stale) continue;
      const why = died
        ? `it had stopped with ${ER_MASTER_FATAL_READING_BINLOG} (${String(row.Last_IO_Error).slice(0, 160)})`
        : `its gtid_slave_pos ${slavePos || '(empty)'} is older than everything it has (${wanted}), and ${target}'s new binlog starts at the copy`;
      const timeoutMs = options.timeoutMs ?? 60_000;
      const leftAlone = {
        host,
        ok: false,
        note: `${host} replicates from ${target} but ${why}, and ${target} did not reach ${host}'s position ${wanted} within ${timeoutMs / 1000} s (errant transactions on ${host}?): left as it is`,
      };
      let moved = '';
      if (currentPos) {
        // The server asks from gtid_current_pos itself: only wait until the target has it.
        if (!(await caughtUp(target, connect, wanted, options))) {
          results.push(leftAlone);
          continue;
        }
        await peer.query('STOP SLAVE');
      } else {
        const decision = await moveToServablePosition(peer, () => binlogPosOf(target, connect), {
          deadline: Date.now() + timeoutMs,
          pollMs: options.pollMs ?? 250,
        });
        if (decision.kind === 'master-behind') {
          results.push(leftAlone);
          continue;
        }
        if (decision.kind === 'move')
          moved = ` (gtid_slave_pos moved from ${decision.from || '(empty)'} to ${decision.start}, which ${target}'s binlog holds)`;
        else await peer.query('STOP SLAVE');
      }
      if (stoppedOnPurpose) {
        results.push({
          host,
          ok: true,
          note: `${host}'s replication from ${target} was stopped and stays stopped${moved}; ${why}`,
        });
        continue;
      }
      await peer.query('START SLAVE');
      const running = await ioRunning(peer, options);
      results.push({
        host,
        ok: running.ok,
        note: running.ok
          ? `restarted ${host}'s replication from ${target} once ${target} had ${wanted}${moved}; ${why}`
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

/** The target's gtid_binlog_pos: what it can serve. */
async function binlogPosOf(
  target: string,
  connect: (host: string) => Promise<Connection>,
): Promise<string> {
  const connection = await connect(target);
  try {
    return (await readPositions(connection)).text.binlogPos;
  } finally {
    connection.destroy();
  }
}

/** Polls until everything `position` names is in the target's binlog. */
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
      // The binlog, not the replication position: a peer can be served only what the binlog holds.
      if (contains((await readPositions(connection)).binlog, position)) return true;
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
