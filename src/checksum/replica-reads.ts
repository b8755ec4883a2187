/**
 * A replica's side of the first pass: each chunk's checksum read on the replica itself, once it
 * has applied everything the writer had when the writer read the same chunk. One connection per
 * replica, one chunk at a time in the writer's order, while the writer reads the next chunks:
 * all hosts scan at once, and nobody takes a row lock.
 */
import { queryRows, type Connection } from '../mysql/connect.js';
import { missingFrom } from '../mysql/gtid.js';
import { readPositions } from '../mysql/positions.js';

/** One chunk's figures, as the first pass compares them. */
export interface ChunkSum {
  crc: string;
  count: number;
}

/** A pause on a replica that has not yet applied the position, short so the chunk starts soon after. */
const WAIT_STEP_SECONDS = 0.1;

export class ReplicaReads {
  /** "db.table" -> chunk -> this replica's figures. */
  readonly sums = new Map<string, Map<number, ChunkSum>>();
  /** Why this replica could not be compared; set once, and nothing more is read then. */
  failure?: string;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly host: string,
    private readonly connection: Connection,
    private readonly waitTimeoutMs: number,
  ) {}

  /** Reads `sql` (the chunk's checksum SELECT) once this replica has applied `position`. */
  read(table: string, chunk: number, position: string, sql: string): void {
    this.queue = this.queue.then(async () => {
      if (this.failure) return;
      try {
        await this.reach(position);
        const [row] = await queryRows<{ crc: unknown; cnt: unknown }>(this.connection, sql);
        let sums = this.sums.get(table);
        if (!sums) this.sums.set(table, (sums = new Map()));
        sums.set(chunk, { crc: String(row?.crc), count: Number(row?.cnt) });
      } catch (error) {
        this.failure = (error as Error).message;
      }
    });
  }

  /** Every read queued so far has run (or the replica failed). */
  done(): Promise<void> {
    return this.queue;
  }

  /**
   * Until `@@gtid_current_pos` contains `position`: it covers what the host wrote itself too, so a
   * former writer whose own domain is in the writer's position counts as caught up, which
   * MASTER_GTID_WAIT (replication's position only) would wait for in vain. MASTER_GTID_WAIT is
   * the pause between two looks: it returns as soon as replication gets there.
   */
  private async reach(position: string): Promise<void> {
    const deadline = Date.now() + this.waitTimeoutMs;
    for (;;) {
      const positions = await readPositions(this.connection);
      if (missingFrom(position, positions.current).length === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `did not apply the writer's position ${position} within ${this.waitTimeoutMs} ms (at ${positions.text.currentPos}); is replication running?`,
        );
      await this.connection.query('SELECT MASTER_GTID_WAIT(?, ?)', [position, WAIT_STEP_SECONDS]);
    }
  }
}
