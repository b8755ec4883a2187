import type { Connection } from './connect.js';
import { contains, formatPosition, mergePositions, parsePosition } from './gtid.js';
import { readPositions } from './positions.js';

/**
 * Where a replica with MASTER_USE_GTID=slave_pos should ask its master to start.
 *
 * A replica asks from its gtid_slave_pos, and in master-master that is often old: a master's own
 * writes are in its binlog but never in its gtid_slave_pos (they come back around the ring and
 * are filtered), so the writer's slave position still names the last transaction it applied from
 * its peer, possibly many failovers ago. A master can serve a GTID only while its binary logs hold
 * it, and a host rebuilt from a copy (rejoin, clone, restore) has none from before the copy: asked
 * for an older GTID it answers 1236 and the IO thread stops for good.
 *
 * The rule: start from everything the replica has (its binlog position merged with its slave
 * position: in gtid_strict_mode, one GTID per domain stands for all before it), once the master
 * has all of it. The master then holds that GTID in its binlog (it logged it when it applied it
 * after the copy) and sends exactly what the replica lacks. While the master lacks part of it
 * (still catching up, or the replica has transactions the master never saw) nothing is moved.
 */
export type StartDecision =
  /** gtid_slave_pos already names everything the replica has, and the master has it. */
  | { kind: 'keep'; start: string }
  /** Move gtid_slave_pos from `from` to `start` before START SLAVE. */
  | { kind: 'move'; start: string; from: string }
  /** The master does not have `wanted` (yet): leave the position alone. */
  | { kind: 'master-behind'; wanted: string };

export function startPosition(
  replica: { binlogPos: string; slavePos: string },
  masterHas: string,
): StartDecision {
  const wanted = formatPosition(mergePositions(replica.binlogPos, replica.slavePos));
  const current = formatPosition(parsePosition(replica.slavePos));
  if (!contains(masterHas, wanted)) return { kind: 'master-behind', wanted };
  if (wanted === current) return { kind: 'keep', start: current };
  return { kind: 'move', start: wanted, from: current };
}

export interface MoveOptions {
  /** Give up waiting for the master (or for a quiet moment on a replica taking writes) after this. */
  deadline: number;
  pollMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Applies startPosition() to a live replica: stops its threads and moves gtid_slave_pos when it
 * must, waiting until `deadline` for the master to have what the replica has. The positions are
 * read again on every try, replica first, then master, right before the SET: a replica that takes
 * writes itself (the writer's channel back from its peer) moves on meanwhile, and MariaDB refuses a
 * gtid_slave_pos older than the replica's own binlog ("conflicts with the binary log"), so a
 * refused SET is tried again with fresh positions. Resolves with the last decision; its kind is
 * 'move' only if gtid_slave_pos was moved (threads then stopped: the caller starts them).
 */
export async function moveToServablePosition(
  replica: Connection,
  masterBinlogPos: () => Promise<string>,
  options: MoveOptions,
): Promise<StartDecision> {
  let lastError: Error | undefined;
  for (;;) {
    const { text } = await readPositions(replica);
    const decision = startPosition(text, await masterBinlogPos());
    if (decision.kind === 'keep') return decision;
    if (decision.kind === 'move') {
      try {
        await replica.query('STOP SLAVE');
        await replica.query('SET GLOBAL gtid_slave_pos = ?', [decision.start]);
        return decision;
      } catch (error) {
        lastError = error as Error;
      }
    }
    if (Date.now() > options.deadline) {
      if (decision.kind === 'move')
        throw new Error(
          `could not move gtid_slave_pos to ${decision.start}: ${lastError?.message ?? 'refused'}`,
        );
      return decision;
    }
    await sleep(options.pollMs ?? 100);
  }
}
