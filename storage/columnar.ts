import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { encodeText, type ColumnSlice, type Compress, type LeafInfo, type Text } from './parquet.ts';
import { startPageWorker, type PageWorker } from './page-worker.ts';
import { ChunkWriter, type PageData } from './row-groups.ts';
import { Growable, newBuffers, Strings, type ColumnBuffers, type CompiledTable } from './shred.ts';
import { zstd } from './zstd.ts';

/*
 * Column buffers → pages (storage/row-groups.ts) → one file; and the durable batch part format.
 *
 * Rows are shredded into column buffers; every PAGE_WEIGHT characters of rows (strings, plus 4 per list element)
 * the buffers are cut into one page per column: strings UTF-8 encoded here (JS strings cannot leave the thread),
 * everything else as the typed arrays the shredder filled. A table that fills a page hands its pages to a worker
 * thread (storage/page-worker.ts) that encodes, compresses and writes them while this thread shreds the next rows;
 * the arrays move there and back without copies. A smaller table, or one where no worker can start, is encoded
 * here at finish, the same way.
 */

export const PAGE_WEIGHT = 2 << 20;

/** Reused ArrayBuffers in power-of-two sizes: pages would otherwise allocate external memory that only GC frees. */
class BufferPool {
  private free = new Map<number, ArrayBuffer[]>();
  take = (bytes: number): ArrayBuffer => {
    const size = 2 ** Math.ceil(Math.log2(Math.max(bytes, 1024)));
    return this.free.get(size)?.pop() ?? new ArrayBuffer(size);
  };
  give = (ab: ArrayBuffer) => {
    let list = this.free.get(ab.byteLength);
    if (!list) this.free.set(ab.byteLength, (list = []));
    if (list.length < 64) list.push(ab);
  };
}

const isText = (v: ColumnSlice['vals']): v is Text => 'lens' in v;

export class TableEncoder {
  buf: ColumnBuffers;
  bufRows = 0;
  private sink: ChunkWriter | PageWorker | null = null;
  private pool = new BufferPool();

  constructor(private table: CompiledTable, readonly path: string, private compress: Compress | null, private label: string) {
    this.buf = newBuffers(table.leaves);
  }

  /** Decided at the first page: a worker when that page is full (a big table), else inline. */
  private sinkFor(full: boolean): ChunkWriter | PageWorker {
    if (this.sink) return this.sink;
    const { leaves, roots } = this.table;
    const w = full ? startPageWorker(this, { leaves, roots, path: this.path, compress: this.compress !== null }, this.label, this.pool.give) : null;
    this.sink = w ?? new ChunkWriter(leaves, roots, this.path, this.compress);
    return this.sink;
  }

  /** Cuts the buffered rows into a page and empties the buffers; resolves once the worker has room for more. */
  flushPage(): Promise<void> | void {
    if (this.bufRows === 0) return;
    const sink = this.sinkFor(this.buf.chars >= PAGE_WEIGHT);
    const b = this.buf, leaves = this.table.leaves;
    const cols: ColumnSlice[] = [];
    for (let i = 0; i < leaves.length; i++) {
      const v = b.v[i];
      const vals = v instanceof Strings ? encodeText(v.a, v.n, this.pool.take) : v.a;
      cols.push({ defs: b.d[i].a, reps: b.r[i]?.a ?? null, s0: 0, s1: b.d[i].n, vals, v0: 0, v1: v.n });
    }
    const page: PageData = { rows: this.bufRows, cols };
    let wait: Promise<void> | void = undefined;
    if (sink instanceof ChunkWriter) {
      sink.page(page);
      for (const c of cols) if (isText(c.vals)) { this.pool.give(c.vals.lens.buffer as ArrayBuffer); this.pool.give(c.vals.bytes.buffer as ArrayBuffer); }
    } else {
      // The shredder's arrays go with the page; it gets pooled ones of the same size.
      const moved = new Set<Growable<Uint8Array | Int32Array | Float64Array>>();
      for (let i = 0; i < leaves.length; i++) {
        moved.add(b.d[i]);
        const r = b.r[i], v = b.v[i];
        if (r) moved.add(r);
        if (v instanceof Growable) moved.add(v);
      }
      const transfer = new Set<ArrayBuffer>();
      for (const g of moved) transfer.add(g.a.buffer as ArrayBuffer);
      for (const c of cols) if (isText(c.vals)) { transfer.add(c.vals.lens.buffer as ArrayBuffer); transfer.add(c.vals.bytes.buffer as ArrayBuffer); }
      const sizes = [...moved].map((g) => g.a.byteLength);
      wait = sink.page(page, [...transfer]);
      let k = 0;
      for (const g of moved) g.a = new (g.a.constructor as new (b: ArrayBuffer) => typeof g.a)(this.pool.take(sizes[k++]));
    }
    this.clearBuffers();
    return wait;
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

  /** Remembers where the table stands; `restore` drops the pages made since (the buffers are the caller's). */
  checkpoint() { this.sinkFor(this.buf.chars >= PAGE_WEIGHT).checkpoint(); }

  restore() { this.sink?.restore(); }

  /** The pages so far are final: their row groups go to the file. */
  commit() { this.sink?.commit(); }

  /** Flushes what is buffered, writes the remaining row groups and the footer; returns the row count. */
  async finish(): Promise<number> {
    await this.flushPage();
    return this.sinkFor(false).finish();
  }

  abort() { this.sink?.abort(); }
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
