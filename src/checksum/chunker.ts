import { queryRows, type Connection } from '../mysql/connect.js';
import { nextBoundarySql, qualified, quoteIdentifier } from './sql.js';
import type { TablePlan } from './tables.js';

/**
 * Where the next chunk ends. `next(size)` returns the upper boundary of a chunk of about `size`
 * rows after the previous one, or undefined for the last chunk (open above); `observe(rows)`
 * tells it how many rows that chunk had.
 */
export interface Chunker {
  next(size: number): Promise<unknown[] | undefined>;
  observe(rows: number): void;
}

/** Any key: the boundary is the key of the size-th row after the previous boundary (LIMIT/OFFSET). */
export class OffsetChunker implements Chunker {
  private lower: unknown[] | undefined;

  constructor(
    private readonly connection: Connection,
    private readonly plan: TablePlan,
  ) {}

  async next(size: number): Promise<unknown[] | undefined> {
    const key = this.plan.key as NonNullable<TablePlan['key']>;
    const [row] = (
      await this.connection.query({
        sql: nextBoundarySql(this.plan.db, this.plan.table, key, this.lower, size),
        rowsAsArray: true,
      })
    )[0] as unknown[][];
    this.lower = row;
    return row;
  }

  observe(): void {}
}

const INTEGER_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint']);

/** Rows a tapering chunk keeps at least: below that, a chunk's fixed cost outweighs its rows. */
export const TAPER_MIN_ROWS = 5000;
/**
 * An integer-key chunk is cut by arithmetic only while its key span is at most this many times
 * its target rows (it then cannot hold more rows than that); wider spans take their boundary
 * from the rows.
 */
export const DENSE_LIMIT = 2;

/** True when the chunk key is one integer column: its chunks can be cut by key arithmetic. */
export function hasIntegerKey(plan: TablePlan): boolean {
  const columns = plan.key?.columns ?? [];
  if (columns.length !== 1) return false;
  const type = plan.columns.find((column) => column.name === columns[0])?.type;
  return type !== undefined && INTEGER_TYPES.has(type.toLowerCase());
}

/**
 * Key span of the next chunk: `size` rows at the density of the last chunk (keys per row), and
 * near the end of the key range at most half of what remains (but no fewer keys than
 * TAPER_MIN_ROWS rows take), so the last chunks shrink and the replicas, one chunk behind the
 * writer, finish soon after it. At least 1.
 */
export function nextSpan(options: { size: number; keysPerRow: number; remaining: bigint }): bigint {
  const wanted = BigInt(Math.max(1, Math.round(options.size * options.keysPerRow)));
  const floor = BigInt(Math.max(1, Math.round(TAPER_MIN_ROWS * options.keysPerRow)));
  const half = options.remaining / 2n;
  let span = wanted;
  if (half < span) span = half > floor ? half : floor < wanted ? floor : wanted;
  return span < 1n ? 1n : span;
}

/**
 * One integer key column: chunks are key ranges computed from the key's bounds and the density
 * seen so far, with no query that reads the rows first (the LIMIT/OFFSET boundary read every row
 * of a chunk once more on the writer), as long as the range has at most DENSE_LIMIT x target
 * keys; in sparse stretches the boundary comes from the rows, so no chunk is ever larger than
 * that. Boundaries are whole numbers as BigInt, exact for any BIGINT.
 */
export class IntegerChunker implements Chunker {
  private lower: bigint | undefined;
  private max: bigint | undefined;
  private min: bigint | undefined;
  private started = false;
  private keysPerRow = 1;
  private lastSpan = 0n;

  constructor(
    private readonly connection: Connection,
    private readonly plan: TablePlan,
  ) {}

  private get column(): string {
    return (this.plan.key as NonNullable<TablePlan['key']>).columns[0] as string;
  }

  private async bounds(): Promise<void> {
    const column = quoteIdentifier(this.column);
    const [row] = await queryRows<{ lo: string | null; hi: string | null }>(
      this.connection,
      `SELECT CAST(MIN(${column}) AS CHAR) AS lo, CAST(MAX(${column}) AS CHAR) AS hi FROM ${qualified(this.plan.db, this.plan.table)}`,
    );
    this.min = row?.lo === null || row?.lo === undefined ? undefined : BigInt(row.lo);
    this.max = row?.hi === null || row?.hi === undefined ? undefined : BigInt(row.hi);
  }

  async next(size: number): Promise<unknown[] | undefined> {
    if (!this.started) {
      this.started = true;
      await this.bounds();
    }
    if (this.min === undefined || this.max === undefined) return undefined; // empty: one chunk, open both ways
    const from = this.lower ?? this.min - 1n; // the first chunk is open below; it starts at the smallest key
    const remaining = this.max - from;
    let span = nextSpan({ size, keysPerRow: this.keysPerRow, remaining });
    // A unique integer key holds at most one row per key, so a span of at most DENSE_LIMIT x size
    // keys cannot hold more rows than that. A wider one (a sparse stretch, where a dense one may
    // follow) takes its boundary from the rows, exactly, as any other key does: a range estimate
    // (EXPLAIN) was off by 2x both ways here, and let a 300k-row chunk through.
    if (span > BigInt(Math.ceil(DENSE_LIMIT * Math.max(size, 1)))) {
      const key = this.plan.key as NonNullable<TablePlan['key']>;
      const [row] = (
        await this.connection.query({
          sql: nextBoundarySql(
            this.plan.db,
            this.plan.table,
            key,
            this.lower === undefined ? undefined : [this.lower],
            size,
          ),
          rowsAsArray: true,
        })
      )[0] as unknown[][];
      if (!row) return undefined; // fewer than size rows left: the last chunk, open above
      span = BigInt(String(row[0])) - from;
    } else if (span >= remaining) return undefined; // the last chunk: open above
    this.lastSpan = span;
    const upper = from + span;
    this.lower = upper;
    return [upper];
  }

  observe(rows: number): void {
    if (this.lastSpan <= 0n) return;
    // Keys per row of the last chunk; an empty one says the keys are sparser than thought.
    this.keysPerRow = rows > 0 ? Number(this.lastSpan) / rows : this.keysPerRow * 4;
  }
}

export function chunkerFor(connection: Connection, plan: TablePlan): Chunker {
  return hasIntegerKey(plan)
    ? new IntegerChunker(connection, plan)
    : new OffsetChunker(connection, plan);
}
