import { queryRows, type Connection } from './connect.js';
import { parseBinlogState, parsePosition, type Gtid, type GtidPosition } from './gtid.js';

/**
 * The one place that reads GTID positions from a server. Every module that needs a host's
 * positions (the monitor, the engine's live reads, the actuator, checksums, snapshots, rejoin and
 * the peers' repair after a copy) asks here, and gets them typed: parsed by src/mysql/gtid.ts,
 * never by a pattern of its own. The server's own text is kept beside them, exactly as read, for
 * what is stored, journaled or handed back to the server.
 */

/** The positions as the server printed them ("" for a variable that is NULL or was not read). */
export interface PositionTexts {
  /** @@gtid_binlog_pos: the last GTID per domain in the binlog: what this host can serve. */
  binlogPos: string;
  /** @@gtid_slave_pos: the last GTID per domain applied by replication. */
  slavePos: string;
  /** @@gtid_current_pos: per domain, the last GTID this host applied or wrote itself. */
  currentPos: string;
  /** @@gtid_binlog_state: the last GTID per domain AND server_id in the binlog. */
  binlogState: string;
}

/** A server's positions, parsed when first asked for (a malformed one throws GtidParseError then). */
export class ServerPositions {
  private parsed = new Map<string, unknown>();

  constructor(
    readonly text: PositionTexts,
    /** @@server_id (NaN when it was not read). */
    readonly serverId: number,
    /** @@log_bin: false when the server writes no binlog. */
    readonly logBin: boolean,
  ) {}

  get binlog(): GtidPosition {
    return this.once('binlog', () => parsePosition(this.text.binlogPos));
  }

  get slave(): GtidPosition {
    return this.once('slave', () => parsePosition(this.text.slavePos));
  }

  get current(): GtidPosition {
    return this.once('current', () => parsePosition(this.text.currentPos));
  }

  /** Keyed "domain-server"; tolerant (see parseBinlogState). */
  get binlogState(): ReadonlyMap<string, Gtid> {
    return this.once('state', () => parseBinlogState(this.text.binlogState));
  }

  private once<T>(key: string, parse: () => T): T {
    if (!this.parsed.has(key)) this.parsed.set(key, parse());
    return this.parsed.get(key) as T;
  }
}

/**
 * The columns a position read selects, for a caller that reads other variables in the same
 * statement (the monitor's check keeps to one round trip); positionsFromRow reads them back.
 */
export const POSITION_COLUMNS =
  '@@global.gtid_binlog_pos AS binlog, @@global.gtid_slave_pos AS slave, @@global.gtid_current_pos AS current, ' +
  '@@global.gtid_binlog_state AS state, @@global.server_id AS server_id, @@global.log_bin AS log_bin';

const text = (value: unknown): string =>
  value === null || value === undefined ? '' : String(value);

/** The positions in a row that selected POSITION_COLUMNS (a missing column reads as empty). */
export function positionsFromRow(row: Record<string, unknown> | undefined): ServerPositions {
  return new ServerPositions(
    {
      binlogPos: text(row?.binlog),
      slavePos: text(row?.slave),
      currentPos: text(row?.current),
      binlogState: text(row?.state),
    },
    Number(row?.server_id),
    Number(row?.log_bin) === 1,
  );
}

export interface ReadOptions {
  /** Gives up on a server that does not answer (ms); none by default. */
  timeoutMs?: number;
  /** Names the host in the error when the server answers with no row. */
  host?: string;
}

/** Reads every GTID position of the server behind `connection`, in one statement. */
export async function readPositions(
  connection: Connection,
  options: ReadOptions = {},
): Promise<ServerPositions> {
  const sql = `SELECT ${POSITION_COLUMNS}`;
  const [row] =
    options.timeoutMs === undefined
      ? await queryRows<Record<string, unknown>>(connection, sql)
      : ((await connection.query({ sql, timeout: options.timeoutMs }))[0] as Array<
          Record<string, unknown>
        >);
  if (!row)
    throw new Error(`${options.host ? `${options.host}: ` : ''}no answer to the GTID query`);
  return positionsFromRow(row);
}
