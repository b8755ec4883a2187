import mysql from 'mysql2/promise';

/**
 * SQL text for the checksum: the first pass's plain reads, which every host runs itself, and the
 * re-check's replicated statements. Every statement carries its values as literals (mysql2's
 * query() interpolates client-side): a re-check statement reaches the binlog and, with STATEMENT
 * format, each replica re-executes the very same text over its own rows.
 */

export function quoteIdentifier(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

export function qualified(db: string, table: string): string {
  return `${quoteIdentifier(db)}.${quoteIdentifier(table)}`;
}

export function literal(value: unknown): string {
  // Whole-number boundaries computed by key arithmetic: exact digits, unquoted (a quoted string
  // compared with a BIGINT column may go through a double and lose the last digits).
  if (typeof value === 'bigint') return value.toString();
  return mysql.escape(value as Parameters<typeof mysql.escape>[0]);
}

export interface TableKey {
  /** 'PRIMARY' or the unique index name, used in FORCE INDEX. */
  index: string;
  columns: string[];
}

export interface ColumnInfo {
  name: string;
  nullable: boolean;
  /** information_schema DATA_TYPE (int, varchar ...), when known: an integer key is chunked by arithmetic. */
  type?: string;
}

/**
 * Rows strictly after `boundary` in key order, expanded the way an index range scan understands
 * it: (a > x) OR (a = x AND b > y) ... A row-constructor comparison would be shorter but is not
 * reliably turned into a range scan.
 */
export function afterBoundary(columns: string[], boundary: unknown[], inclusive = false): string {
  const branches: string[] = [];
  for (let depth = 0; depth < columns.length; depth++) {
    const parts: string[] = [];
    for (let index = 0; index < depth; index++)
      parts.push(`${quoteIdentifier(columns[index] as string)} = ${literal(boundary[index])}`);
    const last = depth === columns.length - 1;
    const operator = last && inclusive ? '>=' : '>';
    parts.push(
      `${quoteIdentifier(columns[depth] as string)} ${operator} ${literal(boundary[depth])}`,
    );
    branches.push(parts.length === 1 ? (parts[0] as string) : `(${parts.join(' AND ')})`);
  }
  return branches.length === 1 ? (branches[0] as string) : `(${branches.join(' OR ')})`;
}

/** Rows at or before `boundary` in key order. */
export function upToBoundary(columns: string[], boundary: unknown[]): string {
  const branches: string[] = [];
  for (let depth = 0; depth < columns.length; depth++) {
    const parts: string[] = [];
    for (let index = 0; index < depth; index++)
      parts.push(`${quoteIdentifier(columns[index] as string)} = ${literal(boundary[index])}`);
    const last = depth === columns.length - 1;
    parts.push(
      `${quoteIdentifier(columns[depth] as string)} ${last ? '<=' : '<'} ${literal(boundary[depth])}`,
    );
    branches.push(parts.length === 1 ? (parts[0] as string) : `(${parts.join(' AND ')})`);
  }
  return branches.length === 1 ? (branches[0] as string) : `(${branches.join(' OR ')})`;
}

/**
 * WHERE clause of one chunk: after the previous chunk's upper boundary (none for the first chunk)
 * and up to this chunk's upper boundary (none for the last chunk). The open ends matter: rows a
 * replica has below the writer's first key or above its last still land in a chunk and differ.
 */
export function chunkWhere(
  columns: string[],
  lower: unknown[] | undefined,
  upper: unknown[] | undefined,
): string {
  const parts: string[] = [];
  if (lower) parts.push(afterBoundary(columns, lower));
  if (upper) parts.push(upToBoundary(columns, upper));
  return parts.length === 0 ? '1=1' : parts.join(' AND ');
}

export function orderBy(columns: string[]): string {
  return columns.map(quoteIdentifier).join(', ');
}

/** Row checksum expression as pt-table-checksum builds it: NULL and '' must not collide, hence the ISNULL flags. */
export function rowCrcExpression(columns: ColumnInfo[]): string {
  const values = columns.map((column) => quoteIdentifier(column.name));
  const nullFlags = columns
    .filter((column) => column.nullable)
    .map((column) => `ISNULL(${quoteIdentifier(column.name)})`);
  const parts = nullFlags.length > 0 ? [...values, `CONCAT(${nullFlags.join(', ')})`] : values;
  return `CRC32(CONCAT_WS('#', ${parts.join(', ')}))`;
}

export function checksumTableDdl(schema: string): string[] {
  return [
    `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(schema)}`,
    `CREATE TABLE IF NOT EXISTS ${qualified(schema, 'checksums')} (
  db CHAR(64) NOT NULL,
  tbl CHAR(64) NOT NULL,
  chunk INT NOT NULL,
  chunk_time FLOAT NULL,
  chunk_index VARCHAR(200) NULL,
  lower_boundary TEXT NULL,
  upper_boundary TEXT NULL,
  this_crc CHAR(40) NOT NULL,
  this_cnt INT NOT NULL,
  master_crc CHAR(40) NULL,
  master_cnt INT NULL,
  ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (db, tbl, chunk)
) ENGINE=InnoDB`,
  ];
}

export interface ChunkSpec {
  db: string;
  table: string;
  chunk: number;
  key: TableKey;
  columns: ColumnInfo[];
  lower: unknown[] | undefined;
  upper: unknown[] | undefined;
}

export function describeBoundary(boundary: unknown[] | undefined): string | null {
  return boundary === undefined
    ? null
    : boundary
        .map((value) => (Buffer.isBuffer(value) ? value.toString('hex') : String(value)))
        .join(',');
}

/** The chunk's checksum and row count, and the rows they are over. */
function chunkSums(spec: ChunkSpec): { crc: string; from: string } {
  const where = chunkWhere(spec.key.columns, spec.lower, spec.upper);
  const index = spec.key.index === 'PRIMARY' ? 'PRIMARY' : quoteIdentifier(spec.key.index);
  return {
    crc: `COALESCE(LOWER(CONV(BIT_XOR(CAST(${rowCrcExpression(spec.columns)} AS UNSIGNED)), 10, 16)), 0)`,
    from: `FROM ${qualified(spec.db, spec.table)} FORCE INDEX(${index}) WHERE ${where}`,
  };
}

/**
 * The first pass: a plain read of the chunk's checksum, run on every host itself. A consistent
 * read, so it takes no row lock and works whatever the binlog format.
 */
export function chunkSelectSql(spec: ChunkSpec): string {
  const { crc, from } = chunkSums(spec);
  return `SELECT ${crc} AS crc, COUNT(*) AS cnt ${from}`;
}

/** The re-check of a chunk that differed: the statement every replica re-executes over its own data. */
export function chunkChecksumSql(schema: string, spec: ChunkSpec): string {
  const { crc, from } = chunkSums(spec);
  return (
    `REPLACE INTO ${qualified(schema, 'checksums')} (db, tbl, chunk, chunk_index, lower_boundary, upper_boundary, this_crc, this_cnt, ts) ` +
    `SELECT ${literal(spec.db)}, ${literal(spec.table)}, ${spec.chunk}, ${literal(spec.key.index)}, ${literal(describeBoundary(spec.lower))}, ${literal(describeBoundary(spec.upper))}, ` +
    `${crc}, COUNT(*), NOW() ${from}`
  );
}

/** Copies the writer's result into master_crc/master_cnt on every host, as literals. */
export function masterResultSql(
  schema: string,
  db: string,
  table: string,
  chunk: number,
  crc: string,
  count: number,
  seconds: number,
): string {
  return (
    `UPDATE ${qualified(schema, 'checksums')} SET chunk_time = ${Number(seconds.toFixed(6))}, master_crc = ${literal(crc)}, master_cnt = ${Math.trunc(count)} ` +
    `WHERE db = ${literal(db)} AND tbl = ${literal(table)} AND chunk = ${chunk}`
  );
}

export function diffQuerySql(schema: string): string {
  return (
    `SELECT db, tbl, COUNT(*) AS chunks FROM ${qualified(schema, 'checksums')} ` +
    `WHERE master_cnt <> this_cnt OR master_crc <> this_crc OR ISNULL(master_crc) <> ISNULL(this_crc) GROUP BY db, tbl`
  );
}

/** Next boundary: the last row of a chunk of `size` rows after `lower`. */
export function nextBoundarySql(
  db: string,
  table: string,
  key: TableKey,
  lower: unknown[] | undefined,
  size: number,
): string {
  const index = key.index === 'PRIMARY' ? 'PRIMARY' : quoteIdentifier(key.index);
  const where = lower ? ` WHERE ${afterBoundary(key.columns, lower)}` : '';
  const order = key.columns.map((column) => quoteIdentifier(column)).join(', ');
  return `SELECT ${order} FROM ${qualified(db, table)} FORCE INDEX(${index})${where} ORDER BY ${order} LIMIT 1 OFFSET ${Math.max(0, Math.trunc(size) - 1)}`;
}

/**
 * Adaptive chunk size: rows per second of the last chunk scaled to the target time, smoothed so
 * one slow chunk (a cold page, a lock) does not collapse the size, and bounded both ways.
 */
export function nextChunkSize(
  current: number,
  rows: number,
  seconds: number,
  targetSeconds: number,
  bounds = { min: 10, max: 100_000 },
): number {
  if (rows <= 0 || seconds <= 0) return Math.min(bounds.max, Math.max(bounds.min, current * 2));
  const ideal = (rows / seconds) * targetSeconds;
  const smoothed = current * 0.25 + ideal * 0.75;
  const lowest = Math.max(bounds.min, current / 4);
  const highest = Math.min(bounds.max, current * 4);
  return Math.round(Math.min(highest, Math.max(lowest, smoothed)));
}
