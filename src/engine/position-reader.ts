import { openConnection, type Endpoint } from '../mysql/connect.js';
import type { PositionReader } from './context.js';

/**
 * Reads a host's live GTID position for the switchover: everything the host has, its own
 * binlog merged with what it applied as a replica (the target's MASTER_GTID_WAIT accepts it).
 * One short connection per read; the switchover calls it once, right after the fence.
 */
export class MysqlPositionReader implements PositionReader {
  constructor(
    private readonly endpointFor: (host: string) => Endpoint,
    private readonly merge: (...positions: string[]) => string,
  ) {}

  async currentGtidPosition(host: string): Promise<string> {
    const connection = await openConnection(this.endpointFor(host));
    try {
      const [rows] = await connection.query('SELECT @@global.gtid_binlog_pos AS binlog, @@global.gtid_slave_pos AS slave');
      const row = (rows as Array<{ binlog: string | null; slave: string | null }>)[0];
      return this.merge(row?.binlog ?? '', row?.slave ?? '');
    } finally {
      await connection.end().catch(() => undefined);
    }
  }
}
