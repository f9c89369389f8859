/*
 * What a report is made of, independent of how it is drawn: sections of charts and tables, each chart carrying the
 * SQL it came from (runnable as is with `agentforge sql`) and exactly the rows that SQL returned. The browser test
 * counts one mark per row, so a chart never aggregates or drops rows on the page.
 */
import { runReadOnly, type SqlSession } from '../../storage/sql.ts';
import { sqlIdent, sqlString } from '../../storage/codec.ts';

export type Row = Record<string, unknown>;

export interface Chart {
  id: string;
  title: string;
  /** line: a line per series plus one dot per row; bar / stack: one rect per row; gantt: one horizontal bar per row. */
  kind: 'line' | 'bar' | 'stack' | 'gantt';
  sql: string;
  rows: Row[];
  x: string;
  y: string;
  /** Series (line colour, bar fill). */
  z?: string;
  /** gantt: end of the bar (x is its start). */
  x2?: string;
  /** Facets across (columns) and down (rows). */
  fx?: string;
  fy?: string;
  xLabel?: string;
  yLabel?: string;
  /** Fixed y range (shares and rates: [0, 1], so an all-zero chart does not fill the frame). */
  yDomain?: [number, number];
  /** Ordinal x (bars) keeps the SQL's row order instead of sorting. */
  xOrder?: string[];
}

export interface TableView { title: string; columns: string[]; rows: Row[]; sql?: string }

export interface Section {
  id: string;
  title: string;
  charts: Chart[];
  tables: TableView[];
  notes: string[];
  /** What this run has not produced (yet): said on the page instead of an empty chart. */
  missing: string[];
}

export interface ReportData {
  title: string;
  dag: string | null;
  storeDir: string;
  generatedAt: string;
  run: Row | null;
  sections: Section[];
}

/** Node ids and the table views that hold their latest committed table. */
export interface Scope {
  dag: string | null;
  /** node id → op, in DAG order. */
  nodes: Map<string, string>;
  views: Set<string>;
}

export class Query {
  constructor(readonly session: SqlSession, readonly scope: Scope) {}

  async rows(sql: string): Promise<Row[]> {
    return (await runReadOnly(this.session, sql)).rows.map(plain);
  }

  /** The view of a node's latest committed table in this DAG, or null when it has none. */
  view(node: string): string | null {
    const q = this.scope.dag ? `${this.scope.dag}__${node}` : node;
    if (this.scope.views.has(q)) return sqlIdent(q);
    return !this.scope.dag && this.scope.views.has(node) ? sqlIdent(node) : null;
  }

  nodesOf(...ops: string[]): string[] {
    return [...this.scope.nodes].filter(([, op]) => ops.includes(op)).map(([id]) => id);
  }

  async chart(c: Omit<Chart, 'rows'>): Promise<Chart> {
    return { ...c, rows: await this.rows(c.sql) };
  }
}

/** DuckDB BIGINT / HUGEINT come back as bigint or strings; the page wants plain numbers. */
function plain(r: Row): Row {
  const o: Row = {};
  for (const [k, v] of Object.entries(r)) o[k] = typeof v === 'bigint' ? Number(v) : v;
  return o;
}

export const lit = sqlString;
export const ident = sqlIdent;

export function section(id: string, title: string): Section {
  return { id, title, charts: [], tables: [], notes: [], missing: [] };
}

/** Adds the chart when its SQL returned rows; otherwise records why it is absent. */
export function addChart(s: Section, c: Chart, missing: string): void {
  if (c.rows.length) s.charts.push(c);
  else s.missing.push(missing);
}
