import { openConnection, type Endpoint } from '../mysql/connect.js';
import type { GtidView, PositionReader } from './context.js';

/**
 * Live GTID reads for decisions that cannot trust a monitor observation: the switchover needs
 * the old writer's final position after the fence; set-online compares a host's binlog state
 * with the writer's, read one after the other. One short connection per read.
 */
export class MysqlPositionReader implements PositionReader {
  constructor(
    private readonly endpointFor: (host: string) => Endpoint,
    private readonly merge: (...positions: string[]) => string,
  ) {}

  async currentGtidPosition(host: string): Promise<string> {
    const row = await this.read(host);
    return this.merge(row.binlog ?? '', row.slave ?? '');
  }

  async gtidView(host: string): Promise<GtidView> {
    const row = await this.read(host);
    return {
      binlogState: row.state ?? '',
      known: this.merge(row.binlog ?? '', row.slave ?? '', row.current ?? ''),
      serverId: Number(row.server_id),
    };
  }

  private async read(host: string): Promise<{
    binlog: string | null;
    slave: string | null;
    current: string | null;
    state: string | null;
    server_id: number | string;
  }> {
    const connection = await openConnection(this.endpointFor(host));
    try {
      const [rows] = await connection.query({
        sql: 'SELECT @@global.gtid_binlog_pos AS binlog, @@global.gtid_slave_pos AS slave, @@global.gtid_current_pos AS current, @@global.gtid_binlog_state AS state, @@global.server_id AS server_id',
        // A host gone silent must not hold the switchover or the operator's set-online.
        timeout: 5000,
      });
      const row = (
        rows as Array<{
          binlog: string | null;
          slave: string | null;
          current: string | null;
          state: string | null;
          server_id: number | string;
        }>
      )[0];
      if (!row) throw new Error(`${host}: no answer to the GTID query`);
      return row;
    } finally {
      connection.destroy();
    }
  }
}
