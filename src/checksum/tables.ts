import { queryRows, type Connection } from '../mysql/connect.js';
import type { ColumnInfo, TableKey } from './sql.js';

export const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];
export const NO_KEY_REASON = 'skipped: no primary or unique not-null key';

export interface TablePlan {
  db: string;
  table: string;
  columns: ColumnInfo[];
  /** Undefined when the table has no key to chunk by; such a table is reported, never silently dropped. */
  key?: TableKey;
}

/** "db.table" filters from checksum.tables / --tables; a bare "db" or "db.*" selects a whole schema. */
export function matchesFilter(db: string, table: string, filters: string[] | undefined): boolean {
  if (!filters || filters.length === 0) return true;
  return filters.some((filter) => {
    const [filterDb, filterTable] = filter.split('.', 2);
    if (filterDb !== db) return false;
    return filterTable === undefined || filterTable === '*' || filterTable === table;
  });
}

/** Picks PRIMARY, else the first unique index whose columns are all NOT NULL (NULLs are not ordered uniquely). */
export function chooseKey(
  indexRows: Array<{
    index: string;
    nonUnique: boolean;
    seq: number;
    column: string;
    nullable: boolean;
  }>,
): TableKey | undefined {
  const indexes = new Map<
    string,
    { nonUnique: boolean; columns: Array<{ seq: number; column: string; nullable: boolean }> }
  >();
  for (const row of indexRows) {
    const entry = indexes.get(row.index) ?? { nonUnique: row.nonUnique, columns: [] };
    entry.columns.push({ seq: row.seq, column: row.column, nullable: row.nullable });
    indexes.set(row.index, entry);
  }
  const usable = (name: string) => {
    const entry = indexes.get(name);
    if (!entry || entry.nonUnique || entry.columns.some((column) => column.nullable))
      return undefined;
    return {
      index: name,
      columns: entry.columns.sort((a, b) => a.seq - b.seq).map((column) => column.column),
    };
  };
  if (indexes.has('PRIMARY')) return usable('PRIMARY');
  for (const name of [...indexes.keys()].sort()) {
    const key = usable(name);
    if (key) return key;
  }
  return undefined;
}

/** Base tables outside the system schemas and Switchyard's own schemas, with their columns and chosen key. */
export async function planTables(
  connection: Connection,
  options: { excludeSchemas: string[]; filters?: string[] },
): Promise<TablePlan[]> {
  const excluded = [...new Set([...SYSTEM_SCHEMAS, ...options.excludeSchemas])];
  const tables = await queryRows<{ db: string; tbl: string }>(
    connection,
    `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl FROM information_schema.TABLES
      WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME`,
    [excluded],
  );
  const selected = tables.filter((row) => matchesFilter(row.db, row.tbl, options.filters));
  const plans: TablePlan[] = [];
  for (const { db, tbl } of selected) {
    const columns = await queryRows<{ name: string; nullable: string; type: string }>(
      connection,
      `SELECT COLUMN_NAME AS name, IS_NULLABLE AS nullable, DATA_TYPE AS type FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
      [db, tbl],
    );
    const indexRows = await queryRows<{
      idx: string;
      non_unique: string | number;
      seq: string | number;
      col: string;
      nullable: string;
    }>(
      connection,
      `SELECT INDEX_NAME AS idx, NON_UNIQUE AS non_unique, SEQ_IN_INDEX AS seq, COLUMN_NAME AS col, NULLABLE AS nullable
         FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
      [db, tbl],
    );
    const key = chooseKey(
      indexRows.map((row) => ({
        index: row.idx,
        nonUnique: Number(row.non_unique) !== 0,
        seq: Number(row.seq),
        column: row.col,
        nullable: row.nullable === 'YES',
      })),
    );
    plans.push({
      db,
      table: tbl,
      columns: columns.map((column) => ({
        name: column.name,
        nullable: column.nullable === 'YES',
        type: column.type,
      })),
      key,
    });
  }
  return plans;
}

/** InnoDB's row estimates ("db.table" -> rows) for progress and ETA only: never for correctness. */
export async function estimateRows(
  connection: Connection,
  plans: TablePlan[],
): Promise<Map<string, number>> {
  const schemas = [...new Set(plans.map((plan) => plan.db))];
  if (schemas.length === 0) return new Map();
  const rows = await queryRows<{ db: string; tbl: string; n: string | number | null }>(
    connection,
    'SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?)',
    [schemas],
  );
  return new Map(rows.map((row) => [`${row.db}.${row.tbl}`, Number(row.n ?? 0)]));
}
