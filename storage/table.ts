import { DuckDBInstance } from '@duckdb/node-api';
import { appendFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { sqlString, tableCodec, type TableCodec } from './codec.ts';
import { appendPart, encodePart, PAGE_WEIGHT, TableEncoder, writeDurable, type Checkpoint } from './columnar.ts';
import { compileTable, mark, newBuffers, rollback, type ColumnBuffers, type CompiledTable } from './shred.ts';
import { zstd } from './zstd.ts';

/*
 * Tables: rows are validated against the zod schema and stored as one zstd Parquet file whose column types come
 * from the schema (storage/codec.ts), never from the rows. Named batches are durable (fsync + rename) in the node's
 * checkpoint dir so a killed node resumes. Reading is DuckDB over the Parquet file, rows decoded by the codec.
 */

export class RowValidationError extends Error {
  constructor(readonly nodeId: string, readonly rowIndex: number, readonly path: string, message: string, batch?: string) {
    super(`node ${nodeId}: output row ${rowIndex}${batch !== undefined ? ` (batch ${batch})` : ''} fails the schema at ${path || '(root)'}: ${message}; nothing was committed`);
    this.name = 'RowValidationError';
  }
}

const collator = new Intl.Collator('en', { numeric: true });
const compiledSchemas = new WeakMap<z.ZodObject, CompiledTable | null>();
function compiled(schema: z.ZodObject): CompiledTable | null {
  if (!compiledSchemas.has(schema)) compiledSchemas.set(schema, compileTable(schema));
  return compiledSchemas.get(schema)!;
}

interface Sink {
  readonly batches: Set<string>;
  write(rows: unknown[]): Promise<void>;
  writeBatch(id: string, rows: unknown[]): Promise<void>;
  finish(): Promise<number>;
}

/**
 * Table output of a node. Rows are validated against the zod schema and stored in schema order: streamed rows
 * first, then named batches by id (numeric-aware). Named batches are durable (fsync + rename) in the node's
 * checkpoint dir, so a killed node resumes. `finish` writes one zstd Parquet file, data.parquet, in the stage dir.
 *
 * Schemas the compiler models (storage/shred.ts: nearly all) take the columnar path (storage/columnar.ts: rows
 * shredded straight into columns, Parquet written here); others keep the NDJSON → DuckDB path.
 */
export class TableWriter<S extends z.ZodObject> {
  private sink: Sink;
  readonly resumedBatches: ReadonlySet<string>;

  /** `format: 'ndjson'` forces the NDJSON → DuckDB path (tests compare the two). */
  constructor(schema: S, nodeId: string, stageDir: string, checkpointDir: string, opts: { format?: 'auto' | 'ndjson' } = {}) {
    const batchDir = join(checkpointDir, 'batches');
    mkdirSync(batchDir, { recursive: true });
    const files = readdirSync(batchDir);
    const legacy = files.some((f) => f.endsWith('.ndjson'));
    const table = opts.format === 'ndjson' ? null : compiled(schema);
    if (table && !legacy) this.sink = new ColumnarSink(schema, table, nodeId, stageDir, batchDir, files);
    else {
      if (files.some((f) => f.endsWith(PART_EXT))) throw new Error(`node ${nodeId}: ${batchDir} holds batches in two table formats; remove the checkpoint to start the node over`);
      this.sink = new NdjsonSink(schema, nodeId, stageDir, batchDir, files);
    }
    this.resumedBatches = new Set(this.sink.batches);
  }

  async write(rows: z.input<S>[]): Promise<void> { return this.sink.write(rows); }

  async writeBatch(id: string, rows: z.input<S>[]): Promise<void> { return this.sink.writeBatch(id, rows); }

  hasBatch(id: string): boolean { return this.sink.batches.has(id); }

  /** Writes data.parquet into the staging dir; returns the row count. */
  async finish(): Promise<number> { return this.sink.finish(); }
}

const PART_EXT = '.cols';

class ColumnarSink implements Sink {
  readonly batches = new Set<string>();
  private rowsWritten = 0;
  private enc: TableEncoder;
  private compress = zstd();

  constructor(private schema: z.ZodObject, private table: CompiledTable, private nodeId: string, private stageDir: string, private batchDir: string, files: string[]) {
    for (const f of files) if (f.endsWith(PART_EXT)) this.batches.add(decodeURIComponent(f.slice(0, -PART_EXT.length)));
    this.enc = new TableEncoder(table, join(stageDir, this.compress ? 'data.parquet' : 'data.uncompressed.parquet'), this.compress && this.compress.compress);
  }

  /**
   * Shreds rows into b. Pages fill as it goes (when `enc` is given); an invalid row throws RowValidationError with
   * everything this call added undone, as if the call never happened.
   */
  private shred(b: ColumnBuffers, rows: unknown[], enc: TableEncoder | null, batch?: string) {
    const callStart = mark(b);
    let before = enc ? enc.bufRows : 0;
    let ck: Checkpoint | null = null;
    const undo = () => {
      if (!enc) rollback(b, callStart);
      else if (ck) { enc.restore(ck); enc.clearBuffers(); }
      else { rollback(b, callStart); enc.bufRows = before; }
    };
    const fail = (e: unknown): never => { undo(); throw e; };
    const limit = enc ? PAGE_WEIGHT : Infinity;
    let i = 0;
    while (i < rows.length) {
      const m = mark(b);
      let res: number;
      try { res = this.table.shredRows(rows, i, rows.length, b, limit); } catch (e) { return fail(e); }
      if (res === -1) { if (enc) enc.bufRows += rows.length - i; break; }
      if (res <= -2) {
        const next = -res - 2;
        enc!.bufRows += next - i;
        i = next;
        if (!ck && before > 0) {
          // The page would mix earlier calls' rows with this call's: page those alone, then redo this call's rows.
          rollback(b, callStart);
          enc!.bufRows = before;
          enc!.flushPage();
          before = 0;
          i = 0;
          ck = enc!.checkpoint();
          continue;
        }
        ck ??= enc!.checkpoint();
        enc!.flushPage();
        continue;
      }
      // The compiled checks could not prove row `res` valid: zod decides (and words the error).
      const bad = res;
      rollback(b, m);
      if (bad > i && this.table.shredRows(rows, i, bad, b, Infinity) !== -1) fail(new Error(`node ${this.nodeId}: table encoder is inconsistent`));
      const r = this.schema.safeParse(rows[bad]);
      if (!r.success) {
        const issue = r.error.issues[0];
        this.rowsWritten += bad;
        fail(new RowValidationError(this.nodeId, this.rowsWritten, issue.path.join('.'), issue.message, batch));
      }
      const at = this.table.shredTrusted(r.data, b);
      if (at !== null) fail(new Error(`node ${this.nodeId}: output row ${this.rowsWritten + bad}${batch !== undefined ? ` (batch ${batch})` : ''}: the value at ${at} does not fit its column type; nothing was committed`));
      if (enc) enc.bufRows += bad + 1 - i;
      i = bad + 1;
    }
    this.rowsWritten += rows.length;
  }

  async write(rows: unknown[]): Promise<void> {
    if (!rows.length) return;
    this.shred(this.enc.buf, rows, this.enc);
    if (this.enc.buf.chars >= PAGE_WEIGHT) this.enc.flushPage();
    this.enc.commit();
  }

  async writeBatch(id: string, rows: unknown[]): Promise<void> {
    if (this.batches.has(id)) throw new Error(`node ${this.nodeId}: batch ${JSON.stringify(id)} was already written`);
    const b = newBuffers(this.table.leaves);
    this.shred(b, rows, null, id);
    writeDurable(join(this.batchDir, `${encodeURIComponent(id)}${PART_EXT}`), encodePart(this.table.leaves, b, rows.length));
    this.batches.add(id);
  }

  async finish(): Promise<number> {
    try {
      for (const id of [...this.batches].sort(collator.compare)) {
        this.enc.bufRows += appendPart(join(this.batchDir, `${encodeURIComponent(id)}${PART_EXT}`), this.table.leaves, this.enc.buf);
        if (this.enc.buf.chars >= PAGE_WEIGHT) this.enc.flushPage();
        this.enc.commit();
      }
      const rows = await this.enc.finish();
      if (!this.compress) await recompress(this.enc.path, join(this.stageDir, 'data.parquet'));
      return rows;
    } catch (e) {
      this.enc.abort();
      throw e;
    }
  }
}

/** Without the zstd binding: DuckDB rewrites the uncompressed file as zstd. */
async function recompress(from: string, to: string) {
  const inst = await DuckDBInstance.create(':memory:');
  const conn = await inst.connect();
  try {
    await conn.run(`COPY (SELECT * FROM read_parquet(${sqlString(from)})) TO ${sqlString(to)} (FORMAT parquet, COMPRESSION zstd)`);
  } finally {
    conn.closeSync();
    inst.closeSync();
    rmSync(from, { force: true });
  }
}

/** The NDJSON path: zod safeParse + codec encode per row, NDJSON parts, DuckDB read_json → COPY at finish. */
class NdjsonSink implements Sink {
  private codec: TableCodec;
  private rowsWritten = 0;
  private streamFile: string;
  readonly batches = new Set<string>();

  constructor(private schema: z.ZodObject, private nodeId: string, private stageDir: string, private batchDir: string, files: string[]) {
    this.codec = tableCodec(schema);
    this.streamFile = join(stageDir, 'stream.ndjson');
    for (const f of files) if (f.endsWith('.ndjson')) this.batches.add(decodeURIComponent(f.slice(0, -7)));
  }

  private encode(rows: unknown[], batch?: string): string {
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

  async write(rows: unknown[]): Promise<void> {
    if (rows.length) appendFileSync(this.streamFile, this.encode(rows));
  }

  async writeBatch(id: string, rows: unknown[]): Promise<void> {
    if (this.batches.has(id)) throw new Error(`node ${this.nodeId}: batch ${JSON.stringify(id)} was already written`);
    const data = this.encode(rows, id);
    writeDurable(join(this.batchDir, `${encodeURIComponent(id)}.ndjson`), Buffer.from(data));
    this.batches.add(id);
  }

  /** NDJSON parts in final row order: streamed rows first, then batches by id (numeric-aware). */
  private parts(): string[] {
    const parts = existsSync(this.streamFile) ? [this.streamFile] : [];
    const ids = [...this.batches].sort(collator.compare);
    for (const id of ids) parts.push(join(this.batchDir, `${encodeURIComponent(id)}.ndjson`));
    return parts;
  }

  async finish(): Promise<number> {
    const out = join(this.stageDir, 'data.parquet');
    const parts = this.parts().filter((p) => statSync(p).size > 0);
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
export class TableReader<T> {
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
