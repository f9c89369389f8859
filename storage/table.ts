import { DuckDBInstance } from '@duckdb/node-api';
import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { sqlString, tableCodec, type TableCodec } from './codec.ts';
import type { TableInput, TableOutput } from '../runtime/operator.ts';

/*
 * Tables: rows are validated against the zod schema, encoded, and appended as NDJSON parts; at commit DuckDB reads
 * the parts with explicit column types (from the schema, never guessed) and writes one zstd Parquet file.
 * Named batches are durable (fsync + rename) in the node's checkpoint dir so a killed node resumes.
 */

export class RowValidationError extends Error {
  constructor(readonly nodeId: string, readonly rowIndex: number, readonly path: string, message: string, batch?: string) {
    super(`node ${nodeId}: output row ${rowIndex}${batch !== undefined ? ` (batch ${batch})` : ''} fails the schema at ${path || '(root)'}: ${message}; nothing was committed`);
    this.name = 'RowValidationError';
  }
}

const collator = new Intl.Collator('en', { numeric: true });

export class TableWriter<S extends z.ZodObject> implements TableOutput<z.input<S>> {
  private codec: TableCodec;
  private rowsWritten = 0;
  private streamFile: string;
  private batchDir: string;
  private batches = new Set<string>();
  readonly resumedBatches: ReadonlySet<string>;

  constructor(private schema: S, private nodeId: string, private stageDir: string, checkpointDir: string) {
    this.codec = tableCodec(schema);
    this.batchDir = join(checkpointDir, 'batches');
    mkdirSync(this.batchDir, { recursive: true });
    this.streamFile = join(stageDir, 'stream.ndjson');
    for (const f of readdirSync(this.batchDir)) if (f.endsWith('.ndjson')) this.batches.add(decodeURIComponent(f.slice(0, -7)));
    this.resumedBatches = new Set(this.batches);
  }

  private encode(rows: z.input<S>[], batch?: string): string {
    let out = '';
    for (const row of rows) {
      const r = this.schema.safeParse(row);
      if (!r.success) {
        const issue = r.error.issues[0];
        throw new RowValidationError(this.nodeId, this.rowsWritten, issue.path.join('.'), issue.message, batch);
      }
      out += JSON.stringify(this.codec.encodeRow(r.data as Record<string, unknown>)) + '\n';
      this.rowsWritten++;
    }
    return out;
  }

  async write(rows: z.input<S>[]): Promise<void> {
    if (rows.length) appendFileSync(this.streamFile, this.encode(rows));
  }

  async writeBatch(id: string, rows: z.input<S>[]): Promise<void> {
    if (this.batches.has(id)) throw new Error(`node ${this.nodeId}: batch ${JSON.stringify(id)} was already written`);
    const data = this.encode(rows, id);
    const final = join(this.batchDir, `${encodeURIComponent(id)}.ndjson`);
    const tmp = `${final}.tmp`;
    const fd = openSync(tmp, 'w');
    try { writeSync(fd, data); fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(tmp, final);
    this.batches.add(id);
  }

  hasBatch(id: string): boolean { return this.batches.has(id); }

  /** NDJSON parts in final row order: streamed rows first, then batches by id (numeric-aware). */
  private parts(): string[] {
    const parts = existsSync(this.streamFile) ? [this.streamFile] : [];
    const ids = [...this.batches].sort(collator.compare);
    for (const id of ids) parts.push(join(this.batchDir, `${encodeURIComponent(id)}.ndjson`));
    return parts;
  }

  /** Writes data.parquet into the staging dir; returns the row count. */
  async finish(): Promise<number> {
    const out = join(this.stageDir, 'data.parquet');
    const parts = this.parts().filter((p) => readFileSync(p, { encoding: null }).length > 0);
    const inst = await DuckDBInstance.create(':memory:');
    const conn = await inst.connect();
    try {
      const cols = this.codec.columns.map((c) => `${JSON.stringify(c.name)}::${c.sql} AS ${JSON.stringify(c.name)}`).join(', ');
      const source = parts.length
        ? `read_json([${parts.map(sqlString).join(', ')}], format='newline_delimited', columns=${this.codec.readJsonColumns}, maximum_object_size=1073741824)`
        : `(SELECT ${this.codec.columns.map((c) => `NULL::${c.sql} AS ${JSON.stringify(c.name)}`).join(', ')} WHERE false)`;
      await conn.run(`COPY (SELECT ${cols} FROM ${source}) TO ${sqlString(out)} (FORMAT parquet, COMPRESSION zstd)`);
      const r = await conn.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM read_parquet(${sqlString(out)})`);
      return (r.getRowObjectsJS()[0].n as number) ?? 0;
    } finally {
      conn.closeSync();
      inst.closeSync();
      if (existsSync(this.streamFile)) rmSync(this.streamFile);
    }
  }
}

/** Reads a committed table artifact. One in-memory DuckDB per reader; rows are decoded with the schema's codec. */
export class TableReader<T> implements TableInput<T> {
  private codec: TableCodec;
  constructor(readonly node: string, readonly key: string, readonly files: string[], schema: z.ZodObject) {
    this.codec = tableCodec(schema);
  }

  private source() { return `read_parquet([${this.files.map(sqlString).join(', ')}])`; }

  private async withConn<R>(fn: (conn: Awaited<ReturnType<DuckDBInstance['connect']>>) => Promise<R>): Promise<R> {
    const inst = await DuckDBInstance.create(':memory:');
    const conn = await inst.connect();
    try { return await fn(conn); } finally { conn.closeSync(); inst.closeSync(); }
  }

  async count(): Promise<number> {
    return this.withConn(async (c) => Number((await c.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM ${this.source()}`)).getRowObjectsJS()[0].n));
  }

  async *batches(size = 2048): AsyncIterable<T[]> {
    const inst = await DuckDBInstance.create(':memory:');
    const conn = await inst.connect();
    try {
      const cols = this.codec.columns.map((c) => JSON.stringify(c.name)).join(', ');
      const result = await conn.stream(`SELECT ${cols} FROM ${this.source()}`);
      let buf: T[] = [];
      for await (const chunk of result.yieldRowObjectJs()) {
        for (const row of chunk) {
          buf.push(this.codec.decodeRow(row as Record<string, unknown>) as T);
          if (buf.length >= size) { yield buf; buf = []; }
        }
      }
      if (buf.length) yield buf;
    } finally { conn.closeSync(); inst.closeSync(); }
  }

  async *rows(): AsyncIterable<T> {
    for await (const b of this.batches()) yield* b;
  }

  async all(): Promise<T[]> {
    const out: T[] = [];
    for await (const b of this.batches(8192)) out.push(...b);
    return out;
  }

  async query<R = Record<string, unknown>>(sql: string): Promise<R[]> {
    return this.withConn(async (c) => (await c.runAndReadAll(sql.replaceAll('{table}', this.source()))).getRowObjectsJS() as R[]);
  }
}
