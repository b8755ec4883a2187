import { openConnection, type Endpoint } from '../mysql/connect.js';
import { readPositions, type ServerPositions } from '../mysql/positions.js';
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
    const { text } = await this.read(host);
    return this.merge(text.binlogPos, text.slavePos);
  }

  async gtidView(host: string): Promise<GtidView> {
    const positions = await this.read(host);
    const { text } = positions;
    return {
      binlogState: text.binlogState,
      known: this.merge(text.binlogPos, text.slavePos, text.currentPos),
      serverId: positions.serverId,
    };
  }

  private async read(host: string): Promise<ServerPositions> {
    const connection = await openConnection(this.endpointFor(host));
    try {
      // A host gone silent must not hold the switchover or the operator's set-online.
      return await readPositions(connection, { timeoutMs: 5000, host });
    } finally {
      connection.destroy();
    }
  }
}
