import { contains, formatPosition, mergePositions, parsePosition } from './gtid.js';

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
  /** gtid_slave_pos already names everything the replica has. */
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
  if (wanted === current) return { kind: 'keep', start: current };
  if (!contains(masterHas, wanted)) return { kind: 'master-behind', wanted };
  return { kind: 'move', start: wanted, from: current };
}
