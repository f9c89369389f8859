import { closeSync, openSync, writeSync, writevSync } from 'node:fs';
import { ChunkBuilder, footer, LevelCache, MAGIC, type ChunkMeta, type ColumnSlice, type Compress, type LeafInfo, type RowGroupMeta, type SchemaNode } from './parquet.ts';

/*
 * Pages → column chunks → row groups → one Parquet file: the encoding half of the table writer. It takes pages
 * already cut into plain typed arrays (PageData), so it runs the same on a worker thread (storage/page-worker.ts)
 * as inline. Pages collect into row groups of ROW_GROUP_ROWS rows, written to the file in order while the next
 * pages encode. Pages of an unfinished write() are tentative: `checkpoint`/`restore` drop them again.
 */

export const ROW_GROUP_ROWS = 122_880; // DuckDB's default row group

/** One page of every column (structured-cloneable; leaves under one list share their `reps` array). */
export interface PageData { rows: number; cols: ColumnSlice[] }

class RowGroup {
  rows = 0;
  constructor(readonly chunks: ChunkBuilder[]) {}
}

interface Checkpoint { closed: number; group: RowGroup; rows: number; marks: ReturnType<ChunkBuilder['mark']>[] }

export class ChunkWriter {
  private group: RowGroup;
  private closed: RowGroup[] = [];
  private fd: number | null = null;
  private pos = 0;
  private groups: RowGroupMeta[] = [];
  private pending: Promise<void> = Promise.resolve();
  private ck: Checkpoint | null = null;
  failed: unknown = null;

  /** `onFail` hears of a failed row group write as it happens (a worker reports it before being asked). */
  constructor(private leaves: LeafInfo[], private roots: SchemaNode[], readonly path: string, private compress: Compress | null, private onFail?: (e: unknown) => void) {
    this.group = this.newGroup();
  }

  private newGroup() { return new RowGroup(this.leaves.map((l) => new ChunkBuilder(l, this.compress))); }

  page(p: PageData) {
    const cache = new LevelCache();
    for (let i = 0; i < this.leaves.length; i++) this.group.chunks[i].addPage(p.cols[i], cache);
    this.group.rows += p.rows;
    if (this.group.rows >= ROW_GROUP_ROWS) { this.closed.push(this.group); this.group = this.newGroup(); }
  }

  /** Remembers where the table stands, for `restore`; `commit` forgets it. */
  checkpoint() {
    this.ck = { closed: this.closed.length, group: this.group, rows: this.group.rows, marks: this.group.chunks.map((c) => c.mark()) };
  }

  /** Back to the checkpoint (or nowhere, when none was taken): pages and row groups made since are dropped. */
  restore() {
    const ck = this.ck;
    this.ck = null;
    if (!ck) return;
    this.closed.length = ck.closed;
    this.group = ck.group;
    this.group.rows = ck.rows;
    this.group.chunks.forEach((c, i) => c.reset(ck.marks[i]));
  }

  /** Queues the finished row groups for writing (in order, overlapping with the pages that come next). */
  commit() {
    if (this.failed) throw this.failed;
    this.ck = null;
    for (const g of this.closed.splice(0)) {
      this.pending = this.pending.then(() => this.writeGroup(g)).catch((e) => { if (!this.failed) { this.failed = e; this.onFail?.(e); } });
    }
  }

  private open() {
    if (this.fd === null) { this.fd = openSync(this.path, 'w'); this.pos = writeSync(this.fd, MAGIC); }
    return this.fd;
  }

  private async writeGroup(g: RowGroup) {
    if (this.failed) return;
    const fd = this.open();
    const offset = this.pos;
    const metas: ChunkMeta[] = [];
    for (const c of g.chunks) {
      const { parts, meta } = await c.bytes(this.pos);
      for (let k = 0; k < parts.length; k += 512) this.pos += writevSync(fd, parts.slice(k, k + 512));
      metas.push(meta);
    }
    this.groups.push({ numRows: g.rows, offset, chunks: metas });
  }

  /** Writes the remaining row groups and the footer; returns the row count. */
  async finish(): Promise<number> {
    if (this.group.rows > 0) { this.closed.push(this.group); this.group = this.newGroup(); }
    this.commit();
    await this.pending;
    if (this.failed) { this.abort(); throw this.failed; }
    const fd = this.open();
    try {
      writeSync(fd, footer(this.roots, this.groups));
    } finally {
      closeSync(fd);
      this.fd = null;
    }
    return this.groups.reduce((n, g) => n + g.numRows, 0);
  }

  abort() {
    if (this.fd !== null) { try { closeSync(this.fd); } catch { /* closed */ } this.fd = null; }
  }
}
