import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync, writevSync } from 'node:fs';
import { ChunkBuilder, footer, MAGIC, PageJob, type ChunkMeta, type Compress, type LeafInfo, type RowGroupMeta } from './parquet.ts';
import { Growable, newBuffers, Strings, type ColumnBuffers, type CompiledTable } from './shred.ts';
import { workerMode } from './page-worker.ts';
import { zstd } from './zstd.ts';

/*
 * Column buffers → Parquet pages → row groups → one file; and the durable batch part format.
 *
 * Rows are shredded into column buffers; every PAGE_WEIGHT characters of rows (strings, plus 4 per list element)
 * the buffers are staged as one page per column (text UTF-8 encoded, dictionary indices looked up: what needs the JS
 * strings) and reused, so the strings a page holds die young and are read while still in cache. The rest of the
 * encoding and zstd run on the page worker (storage/page-worker.ts) once a table has made a couple of pages, on
 * the main thread before that. Pages collect into row groups of ROW_GROUP_ROWS rows, written to the file in order.
 * Pages made from rows of an unfinished write() are tentative: `checkpoint`/`restore` drop them again if a later row
 * of that call turns out invalid.
 */

export const ROW_GROUP_ROWS = 122_880; // DuckDB's default row group
export const PAGE_WEIGHT = 2 << 20;

class RowGroup {
  rows = 0;
  constructor(readonly chunks: ChunkBuilder[]) {}
}

export interface Checkpoint { closed: number; group: RowGroup; rows: number; marks: ReturnType<ChunkBuilder['mark']>[] }

export class TableEncoder {
  buf: ColumnBuffers;
  bufRows = 0;
  private group: RowGroup;
  private closed: RowGroup[] = [];
  private fd: number | null = null;
  private pos = 0;
  private groups: RowGroupMeta[] = [];
  private pending: Promise<void> = Promise.resolve();
  private failed: unknown = null;
  private pagesMade = 0;
  private worker = workerMode();

  constructor(private table: CompiledTable, readonly path: string, private compress: Compress | null) {
    this.buf = newBuffers(table.leaves);
    this.group = this.newGroup();
  }

  private newGroup() { return new RowGroup(this.table.leaves.map((l) => new ChunkBuilder(l, this.compress))); }

  /** Encodes the buffered rows as one page per column and empties the buffers. */
  flushPage() {
    if (this.bufRows === 0) return;
    // A table's first pages are encoded here: small tables never start the worker.
    const job = new PageJob(this.worker === 'always' || (this.worker === 'auto' && this.pagesMade >= 2));
    const b = this.buf;
    this.table.leaves.forEach((_, i) => {
      const v = b.v[i];
      this.group.chunks[i].addPage({ defs: b.d[i].a, reps: b.r[i]?.a ?? null, s0: 0, s1: b.d[i].n, vals: v.a, v0: 0, v1: v.n }, job);
    });
    job.run(this.compress);
    this.pagesMade++;
    this.group.rows += this.bufRows;
    this.clearBuffers();
    if (this.group.rows >= ROW_GROUP_ROWS) { this.closed.push(this.group); this.group = this.newGroup(); }
  }

  clearBuffers() {
    const b = this.buf;
    for (let i = 0; i < b.d.length; i++) {
      b.d[i].n = 0;
      const r = b.r[i];
      if (r) r.n = 0;
      const v = b.v[i];
      if (v instanceof Strings) b.v[i] = new Strings(v.n + (v.n >> 3) + 16); else v.n = 0;
    }
    b.chars = 0;
    this.bufRows = 0;
  }

  checkpoint(): Checkpoint {
    return { closed: this.closed.length, group: this.group, rows: this.group.rows, marks: this.group.chunks.map((c) => c.mark()) };
  }

  /** Back to a checkpoint: pages and row groups made since are dropped (the buffers are the caller's). */
  restore(ck: Checkpoint) {
    this.closed.length = ck.closed;
    this.group = ck.group;
    this.group.rows = ck.rows;
    this.group.chunks.forEach((c, i) => c.reset(ck.marks[i]));
  }

  /** Queues the finished row groups for writing (in order, overlapping with what the caller does next). */
  commit() {
    if (this.failed) throw this.failed;
    for (const g of this.closed.splice(0)) this.pending = this.pending.then(() => this.writeGroup(g)).catch((e) => { this.failed ??= e; });
  }

  private async writeGroup(g: RowGroup) {
    if (this.failed) return;
    if (this.fd === null) { this.fd = openSync(this.path, 'w'); this.pos = writeSync(this.fd, MAGIC); }
    const offset = this.pos;
    const metas: ChunkMeta[] = [];
    // All chunks at once: awaited one by one, each dictionary page's compression would cost a thread round trip.
    const chunks = g.chunks.map((c) => c.bytes());
    for (const c of chunks) c.catch(() => {}); // the first failure is thrown below; later ones are not unhandled
    for (const chunk of chunks) {
      const { parts, meta } = await chunk;
      meta.dataOffset += this.pos;
      if (meta.dictOffset !== null) meta.dictOffset += this.pos;
      for (let k = 0; k < parts.length; k += 512) this.pos += writevSync(this.fd, parts.slice(k, k + 512));
      metas.push(meta);
    }
    this.groups.push({ numRows: g.rows, offset, chunks: metas });
  }

  /** Flushes what is buffered, writes the remaining row groups and the footer; returns the row count. */
  async finish(): Promise<number> {
    this.flushPage();
    if (this.group.rows > 0) { this.closed.push(this.group); this.group = this.newGroup(); }
    this.commit();
    await this.pending;
    if (this.failed) { this.abort(); throw this.failed; }
    if (this.fd === null) { this.fd = openSync(this.path, 'w'); this.pos = writeSync(this.fd, MAGIC); }
    try {
      writeSync(this.fd, footer(this.table.roots, this.groups));
    } finally {
      closeSync(this.fd);
      this.fd = null;
    }
    return this.groups.reduce((n, g) => n + g.numRows, 0);
  }

  abort() {
    if (this.fd !== null) { try { closeSync(this.fd); } catch { /* closed */ } this.fd = null; }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Batch parts: [AFC1][u32 header length][header JSON][body, zstd when available]. Body per column: definition
// levels, repetition levels, then values (strings: u32 UTF-16 lengths + UTF-16LE text; numbers/booleans raw).

const PART_MAGIC = Buffer.from('AFC1');

interface PartHeader { rows: number; zstd: boolean; raw: number; cols: { d: number; r: boolean; v: number; chars: number }[] }

export function encodePart(leaves: LeafInfo[], b: ColumnBuffers, rows: number): Buffer {
  const header: PartHeader = { rows, zstd: false, raw: 0, cols: [] };
  const pieces: Uint8Array[] = [];
  leaves.forEach((leaf, i) => {
    const d = b.d[i].view();
    pieces.push(d);
    const r = leaf.repOwner === i ? b.r[i] : null;
    if (r) pieces.push(r.view());
    const v = b.v[i];
    let chars = 0;
    if (v instanceof Strings) {
      const lens = new Uint32Array(v.n);
      for (let k = 0; k < v.n; k++) chars += (lens[k] = v.a[k].length);
      pieces.push(new Uint8Array(lens.buffer), Buffer.from(v.a.slice(0, v.n).join(''), 'utf16le'));
    } else {
      const view = v.view();
      pieces.push(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    }
    header.cols.push({ d: d.length, r: !!r, v: v.n, chars });
  });
  let body: Buffer = Buffer.concat(pieces);
  header.raw = body.length;
  const z = zstd();
  if (z) { body = z.compressSync(body); header.zstd = true; }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(h.length);
  return Buffer.concat([PART_MAGIC, len, h, body]);
}

/** Appends a part's rows to the buffers; returns its row count. */
export function appendPart(file: string, leaves: LeafInfo[], b: ColumnBuffers): number {
  const data = readFileSync(file);
  if (!data.subarray(0, 4).equals(PART_MAGIC)) throw new Error(`${file}: not a table batch part`);
  const hlen = data.readUInt32LE(4);
  const header = JSON.parse(data.subarray(8, 8 + hlen).toString('utf8')) as PartHeader;
  let body: Buffer = data.subarray(8 + hlen);
  if (header.zstd) {
    const z = zstd();
    if (!z) throw new Error(`${file}: written with zstd, which cannot load here`);
    body = z.decompressSync(body);
  }
  if (body.length !== header.raw || header.cols.length !== leaves.length) throw new Error(`${file}: damaged table batch part`);
  let pos = 0;
  const take = (n: number) => { const s = body.subarray(pos, pos + n); pos += n; return s; };
  leaves.forEach((leaf, i) => {
    const c = header.cols[i];
    b.d[i].pushAll(take(c.d));
    if (c.r) b.r[i]!.pushAll(take(c.d));
    const v = b.v[i];
    if (v instanceof Strings) {
      const lens = new Uint32Array(c.v);
      new Uint8Array(lens.buffer).set(take(c.v * 4));
      const text = take(c.chars * 2).toString('utf16le');
      let at = 0;
      for (let k = 0; k < c.v; k++) { v.push(text.slice(at, at + lens[k])); at += lens[k]; }
      b.chars += c.chars;
    } else {
      const width = (v.a as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
      const bytes = take(c.v * width);
      const arr = new (v.a.constructor as new (n: number) => Uint8Array | Int32Array | Float64Array)(c.v);
      new Uint8Array(arr.buffer).set(bytes);
      (v as Growable<typeof arr>).pushAll(arr);
    }
  });
  return header.rows;
}

export function writeDurable(final: string, data: Buffer) {
  const tmp = `${final}.tmp`;
  const fd = openSync(tmp, 'w');
  try { writeSync(fd, data); fsyncSync(fd); } finally { closeSync(fd); }
  renameSync(tmp, final);
}
