/*
 * A small Parquet writer for the table store (format 1.0 footer, data pages v1, every column chunk ZSTD): just what
 * storage/shred.ts produces, i.e. OPTIONAL leaves of BOOLEAN / INT32 / DOUBLE / BYTE_ARRAY (UTF8 or JSON) under
 * OPTIONAL groups and 3-level LISTs, exactly the schema DuckDB's own writer gives these column types.
 *
 * Encodings: levels RLE/bit-packed hybrid; strings dictionary-encoded (PLAIN_DICTIONARY) while the dictionary stays
 * small, else DELTA_LENGTH_BYTE_ARRAY (one UTF-8 encode of the joined column, no per-string copies); numbers and
 * booleans PLAIN. A page is staged by ChunkBuilder.addPage (what needs the JS values) into a PageJob, whose bytes
 * storage/pages.mjs turns into page bodies: on the page worker, or here with compression on the libuv thread pool.
 */

import { bitWidth, ByteWriter, DELTA, DICT, encodePage, PLAIN } from './pages.mjs';
import { pageWorker } from './page-worker.ts';

// Parquet enums (parquet.thrift).
export const T_BOOLEAN = 0, T_INT32 = 1, T_DOUBLE = 5, T_BYTE_ARRAY = 6;
const REQUIRED = 0, OPTIONAL = 1, REPEATED = 2;
const CT_UTF8 = 0, CT_LIST = 3, CT_INT_32 = 17, CT_JSON = 19;
const E_PLAIN = 0, E_PLAIN_DICTIONARY = 2, E_RLE = 3, E_DELTA_LENGTH_BYTE_ARRAY = 6;
const CODEC_UNCOMPRESSED = 0, CODEC_ZSTD = 6;
const PAGE_DATA = 0, PAGE_DICTIONARY = 2;

/** ByteWriter plus the Thrift compact protocol writers of page headers and the footer. */
export class Bytes extends ByteWriter {
  private fieldStack: number[] = [];
  private lastField = 0;

  // Thrift compact protocol.
  private field(id: number, type: number) {
    const delta = id - this.lastField;
    if (delta > 0 && delta <= 15) this.byte((delta << 4) | type);
    else { this.byte(type); this.zigzag(id); }
    this.lastField = id;
  }
  i32(id: number, v: number) { this.field(id, 5); this.zigzag(v); }
  i16(id: number, v: number) { this.field(id, 4); this.zigzag(v); }
  i64(id: number, v: number) { this.field(id, 6); this.zigzag(v); }
  bool(id: number, v: boolean) { this.field(id, v ? 1 : 2); }
  binary(id: number, v: Uint8Array | string) {
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    this.field(id, 8); this.varint(b.length); this.bytes(b);
  }
  structBegin(id: number) { this.field(id, 12); this.fieldStack.push(this.lastField); this.lastField = 0; }
  structEnd() { this.byte(0); this.lastField = this.fieldStack.pop()!; }
  listBegin(id: number, elemType: number, size: number) {
    this.field(id, 9);
    if (size < 15) this.byte((size << 4) | elemType);
    else { this.byte(0xf0 | elemType); this.varint(size); }
  }
  /** A struct element of a list (no field header). */
  elemBegin() { this.fieldStack.push(this.lastField); this.lastField = 0; }
  elemEnd() { this.structEnd(); }
  /** Ends a top-level Thrift struct. */
  stop() { this.byte(0); this.lastField = 0; }
}

/** UTF-8 byte length of a JS string, counting lone surrogates as U+FFFD (3 bytes), as Buffer.write encodes them. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
    else n += 3;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// Schema

export type LeafKind = 'string' | 'json' | 'int32' | 'double' | 'bool';

export interface SchemaNode {
  name: string;
  kind: 'leaf' | 'struct' | 'list';
  leaf?: LeafKind;
  children?: SchemaNode[];
  /** For lists: the element node. */
  element?: SchemaNode;
}

/** Flattened parquet schema elements (depth-first), as DuckDB writes them: every node OPTIONAL, lists 3-level. */
function writeSchema(out: Bytes, roots: SchemaNode[]) {
  const els: ((o: Bytes) => void)[] = [];
  const el = (name: string, rep: number, opts: { type?: number; children?: number; converted?: number; json?: boolean }) => els.push((o) => {
    o.elemBegin();
    if (opts.type !== undefined) o.i32(1, opts.type);
    o.i32(3, rep);
    o.binary(4, name);
    if (opts.children !== undefined) o.i32(5, opts.children);
    if (opts.converted !== undefined) o.i32(6, opts.converted);
    if (opts.json) { o.structBegin(10); o.structBegin(12); o.structEnd(); o.structEnd(); }
    o.elemEnd();
  });
  const walk = (n: SchemaNode) => {
    if (n.kind === 'struct') {
      el(n.name, OPTIONAL, { children: n.children!.length });
      n.children!.forEach(walk);
    } else if (n.kind === 'list') {
      el(n.name, OPTIONAL, { children: 1, converted: CT_LIST });
      el('list', REPEATED, { children: 1 });
      walk({ ...n.element!, name: 'element' });
    } else {
      const k = n.leaf!;
      if (k === 'string') el(n.name, OPTIONAL, { type: T_BYTE_ARRAY, converted: CT_UTF8 });
      else if (k === 'json') el(n.name, OPTIONAL, { type: T_BYTE_ARRAY, converted: CT_JSON, json: true });
      else if (k === 'int32') el(n.name, OPTIONAL, { type: T_INT32, converted: CT_INT_32 });
      else if (k === 'double') el(n.name, OPTIONAL, { type: T_DOUBLE });
      else el(n.name, OPTIONAL, { type: T_BOOLEAN });
    }
  };
  el('duckdb_schema', REQUIRED, { children: roots.length });
  roots.forEach(walk);
  out.listBegin(2, 12, els.length);
  for (const e of els) e(out);
}

// ---------------------------------------------------------------------------------------------------------------
// Column chunks

export interface LeafInfo {
  path: string[]; kind: LeafKind; maxDef: number; maxRep: number;
  /** Leaves with the same innermost list share one repetition-level stream, kept by its first leaf. */
  repOwner: number;
}

/** One leaf column's slots for a page: levels for every slot, values for the defined ones. */
export interface ColumnSlice {
  defs: ArrayLike<number>;
  reps: ArrayLike<number> | null; // the same object for leaves sharing a repetition stream
  s0: number; s1: number; // slot range
  vals: ArrayLike<unknown>;
  v0: number; v1: number; // value range
}

export type Compress = (b: Buffer) => Promise<Buffer>;

export interface ChunkMeta {
  type: number; encodings: number[]; path: string[]; codec: number; numValues: number;
  uncompressed: number; compressed: number; dataOffset: number; dictOffset: number | null;
  stats: { nulls: number; min?: Buffer; max?: Buffer };
}

function pageHeader(type: number, raw: number, compressed: number, num: number, encoding: number): Buffer {
  const h = new Bytes(64);
  h.i32(1, type); h.i32(2, raw); h.i32(3, compressed);
  if (type === PAGE_DATA) {
    h.structBegin(5); h.i32(1, num); h.i32(2, encoding); h.i32(3, E_RLE); h.i32(4, E_RLE); h.structEnd();
  } else {
    h.structBegin(7); h.i32(1, num); h.i32(2, E_PLAIN); h.structEnd();
  }
  h.stop();
  return Buffer.from(h.view());
}

const DICT_MAX_ENTRIES = 1 << 15;
const DICT_MAX_CHARS = 1 << 22;
const DICT_SAMPLE = 4096;
const utf8 = new TextEncoder();
const JOIN_CHUNK = 4096;

/** Staging memory: standalone ArrayBuffers (transferable to the worker, int32 views aligned). */
class StagingWriter extends ByteWriter {
  alloc(size: number) { return Buffer.from(new ArrayBuffer(size)); }
}
const scratch = { int32: new Int32Array(1 << 12), job: new StagingWriter(1 << 16) };
function scratchInt32(n: number): Int32Array {
  if (scratch.int32.length < n) scratch.int32 = new Int32Array(Math.max(n, scratch.int32.length * 2));
  return scratch.int32;
}

/**
 * Page bodies waiting for compression live in reused 8 MiB slabs instead of a fresh buffer each: external memory
 * that only a GC gives back would otherwise make V8 collect (and mark every live row) far more often.
 */
class SlabPool {
  private static SIZE = 8 << 20;
  private cur: { buf: Buffer; off: number; out: number } | null = null;
  private free: { buf: Buffer; off: number; out: number }[] = [];
  take(src: Buffer): { buf: Buffer; release: () => void } {
    const n = src.length;
    if (n > SlabPool.SIZE >> 2) return { buf: Buffer.from(src), release: () => {} };
    if (!this.cur || this.cur.off + n > SlabPool.SIZE) {
      if (this.cur && this.cur.out === 0) this.recycle(this.cur);
      this.cur = this.free.pop() ?? { buf: Buffer.allocUnsafe(SlabPool.SIZE), off: 0, out: 0 };
    }
    const slab = this.cur;
    src.copy(slab.buf, slab.off);
    const buf = slab.buf.subarray(slab.off, slab.off + n);
    slab.off += (n + 7) & ~7;
    slab.out++;
    return { buf, release: () => { if (--slab.out === 0 && slab !== this.cur) this.recycle(slab); } };
  }
  private recycle(s: { buf: Buffer; off: number; out: number }) {
    s.off = 0;
    if (this.free.length < 4) this.free.push(s);
  }
}
const pool = new SlabPool();

interface Page {
  body: Promise<Buffer> | Buffer;
  raw: number;
  slots: number;
  nulls: number;
  encoding: number;
  min?: number;
  max?: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * One page of every column, staged as bytes (levels, UTF-8 text and lengths, dictionary indices, plain values) and
 * encoded by pages.mjs, here or on the page worker. Equal level streams are staged, and encoded, once.
 */
export class PageJob {
  readonly w: ByteWriter;
  private spec: number[] = [];
  private pages: Page[] = [];
  private defs: [number, number][] = [];
  private reps = new Map<unknown, number>();
  private worker: ReturnType<typeof pageWorker> | null;
  private slab = -1;

  constructor(offload: boolean) {
    this.worker = offload ? pageWorker() : null;
    if (this.worker) { this.w = new StagingWriter(0); ({ buf: this.w.buf, slab: this.slab } = this.worker.staging()); } else this.w = scratch.job;
    this.w.pos = 0;
  }

  /** Stages a column's level streams; returns the start of its spec. */
  levels(leaf: LeafInfo, c: ColumnSlice): number[] {
    const n = c.s1 - c.s0;
    let r = -1;
    if (leaf.maxRep > 0) {
      r = this.reps.get(c.reps) ?? -1;
      if (r < 0) { r = this.w.pos; this.w.bytes((c.reps as Uint8Array).subarray(c.s0, c.s1)); this.reps.set(c.reps, r); }
    }
    const key = (c.defs as Uint8Array).subarray(c.s0, c.s1);
    let d = this.defs.find(([at, len]) => len === n && Buffer.compare(this.w.buf.subarray(at, at + n), key) === 0)?.[0];
    if (d === undefined) { d = this.w.pos; this.w.bytes(key); this.defs.push([d, n]); }
    return [n, d, leaf.maxDef, r, leaf.maxRep];
  }

  add(pages: Page[], page: Page, spec: number[]) {
    pages.push(page);
    this.pages.push(page);
    for (const x of spec) this.spec.push(x);
  }

  /** Encodes the staged pages; each page's body becomes its bytes (compressed when `compress` is given: zstd). */
  run(compress: Compress | null) {
    if (!this.worker) {
      encodePage(this.w.view(), this.spec, (k, raw) => {
        const p = this.pages[k];
        p.raw = raw.length;
        if (!compress) { p.body = Buffer.from(raw); return; }
        const { buf, release } = pool.take(raw);
        p.body = compress(buf).then((b) => { release(); return b; }, (e) => { release(); throw e; });
      });
      return;
    }
    const done = this.worker.encode(this.slab, this.w.buf, this.w.pos, this.spec, compress !== null);
    this.pages.forEach((p, k) => {
      p.body = done.then((e) => { p.raw = e.raws[k]; return e.out.subarray(k ? e.ends[k - 1] : 0, e.ends[k]); });
      p.body.catch(() => {}); // a page restore() dropped may fail unobserved
    });
  }
}

/**
 * One leaf's column chunk of a row group, built a page at a time (each staged into a PageJob, which makes its body).
 * String columns start dictionary-encoded when a sample of the first page is low-cardinality, and fall back to
 * DELTA_LENGTH_BYTE_ARRAY for the rest of the chunk once the dictionary outgrows its limit. `mark`/`reset` undo the
 * pages added since a mark.
 */
export class ChunkBuilder {
  private pages: Page[] = [];
  private dict: Map<string, number> | null = null;
  private dictKeys: string[] = [];
  private dictChars = 0;
  /** undecided → on (dictionary pages) → off (plain pages from then on) */
  private dictState: 'undecided' | 'on' | 'off';
  private readonly type: number;

  constructor(private leaf: LeafInfo, private compress: Compress | null) {
    this.type = { string: T_BYTE_ARRAY, json: T_BYTE_ARRAY, int32: T_INT32, double: T_DOUBLE, bool: T_BOOLEAN }[leaf.kind];
    this.dictState = leaf.kind === 'string' || leaf.kind === 'json' ? 'undecided' : 'off';
  }

  mark(): [number, number, string] { return [this.pages.length, this.dictKeys.length, this.dictState]; }

  reset([pages, keys, state]: [number, number, string]) {
    this.pages.length = pages;
    if (this.dict) for (let k = keys; k < this.dictKeys.length; k++) this.dict.delete(this.dictKeys[k]);
    for (let k = keys; k < this.dictKeys.length; k++) this.dictChars -= this.dictKeys[k].length;
    this.dictKeys.length = keys;
    this.dictState = state as ChunkBuilder['dictState'];
    if (state === 'undecided') this.dict = null;
  }

  addPage(c: ColumnSlice, job: PageJob) {
    const nSlots = c.s1 - c.s0, nVals = c.v1 - c.v0;
    if (nSlots === 0) return;
    const w = job.w;
    const spec = job.levels(this.leaf, c);
    const nulls = nSlots - nVals;
    const kind = this.leaf.kind;
    const page: Page = { body: EMPTY, raw: 0, slots: nSlots, nulls, encoding: E_PLAIN };
    if (kind === 'string' || kind === 'json') {
      const vals = c.vals as string[];
      if (this.dictState === 'undecided' && nVals > 0) {
        // Decided on a sample: hashing every value of a column of unique strings flattens each rope for nothing.
        const seen = new Set<string>();
        const sample = Math.min(nVals, DICT_SAMPLE);
        for (let i = 0; i < sample && seen.size * 16 <= sample; i++) seen.add(vals[c.v0 + i]);
        this.dictState = seen.size * 16 <= sample ? 'on' : 'off';
        if (this.dictState === 'on') this.dict = new Map();
      }
      if (this.dictState === 'on' && this.dictPage(c, vals, job, spec)) { page.encoding = E_PLAIN_DICTIONARY; job.add(this.pages, page, spec); return; }
      const lens = scratchInt32(nVals);
      let units = 0;
      for (let i = 0; i < nVals; i++) units += (lens[i] = vals[c.v0 + i].length);
      // Lengths go in front of the text, copied there once the text is written (non-ASCII values rewrite them).
      w.pos = (w.pos + 3) & ~3;
      w.ensure(nVals * 4 + units + 64);
      const at = w.pos;
      w.pos += nVals * 4;
      const t0 = w.pos;
      // Values joined and UTF-8 encoded a few thousand at a time: one native call each, no per-value copies.
      for (let a = 0; a < nVals; a += JOIN_CHUNK) {
        const b = Math.min(a + JOIN_CHUNK, nVals);
        const joined = vals.slice(c.v0 + a, c.v0 + b).join('');
        w.ensure(joined.length * 3);
        const written = utf8.encodeInto(joined, w.buf.subarray(w.pos)).written;
        if (written !== joined.length) {
          // Not ASCII: byte lengths per value; surrogate halves split across values would pair up in the join.
          let sum = 0;
          for (let i = a; i < b; i++) sum += (lens[i] = utf8Length(vals[c.v0 + i]));
          if (sum !== written) {
            for (let i = a; i < b; i++) { const s = vals[c.v0 + i]; lens[i] = Buffer.byteLength(s, 'utf8'); w.ensure(lens[i]); w.pos += w.buf.write(s, w.pos, 'utf8'); }
            continue;
          }
        }
        w.pos += written;
      }
      new Int32Array(w.buf.buffer, w.buf.byteOffset + at, nVals).set(lens.subarray(0, nVals));
      spec.push(DELTA, at, nVals, w.pos - t0);
      page.encoding = E_DELTA_LENGTH_BYTE_ARRAY;
    } else if (kind === 'int32' || kind === 'double') {
      const width = kind === 'int32' ? 4 : 8;
      const src = c.vals as Int32Array | Float64Array;
      let min = Infinity, max = -Infinity;
      for (let i = c.v0; i < c.v1; i++) { const v = src[i]; if (v < min) min = v; if (v > max) max = v; }
      if (nVals) { page.min = min; page.max = max; }
      spec.push(PLAIN, w.pos, nVals * width, 0);
      w.bytes(new Uint8Array(src.buffer, src.byteOffset + c.v0 * width, nVals * width));
    } else {
      const src = c.vals as Uint8Array;
      const n = (nVals + 7) >> 3;
      w.ensure(n);
      const bits = w.buf.subarray(w.pos, w.pos + n).fill(0);
      let t = 0;
      for (let i = 0; i < nVals; i++) if (src[c.v0 + i]) { bits[i >> 3] |= 1 << (i & 7); t++; }
      if (nVals) { page.min = t === nVals ? 1 : 0; page.max = t > 0 ? 1 : 0; }
      spec.push(PLAIN, w.pos, n, 0);
      w.pos += n;
    }
    job.add(this.pages, page, spec);
  }

  /** Stages a dictionary-encoded page; false (dictionary dropped for the rest of the chunk) when it outgrows its limit. */
  private dictPage(c: ColumnSlice, vals: string[], job: PageJob, spec: number[]): boolean {
    const dict = this.dict!;
    const nVals = c.v1 - c.v0;
    const start = this.dictKeys.length;
    const limit = DICT_MAX_ENTRIES;
    const idx = scratchInt32(nVals);
    for (let i = 0; i < nVals; i++) {
      const s = vals[c.v0 + i];
      let k = dict.get(s);
      if (k === undefined) {
        k = this.dictKeys.length;
        this.dictChars += s.length;
        // Over the limit, or a column that is not low-cardinality after all: plain from here on.
        if (k >= limit || this.dictChars > DICT_MAX_CHARS || (k - start) * 8 > nVals) {
          this.dictChars -= s.length;
          this.reset([this.pages.length, start, 'off']);
          this.dictState = 'off';
          return false;
        }
        dict.set(s, k);
        this.dictKeys.push(s);
      }
      idx[i] = k;
    }
    const w = job.w;
    w.pos = (w.pos + 3) & ~3;
    w.ensure(nVals * 4);
    new Int32Array(w.buf.buffer, w.buf.byteOffset + w.pos, nVals).set(idx.subarray(0, nVals));
    spec.push(DICT, w.pos, nVals, Math.max(1, bitWidth(this.dictKeys.length - 1)));
    w.pos += nVals * 4;
    return true;
  }

  get numPages() { return this.pages.length; }

  /** The chunk's bytes (dictionary page first) and its metadata, offsets relative to the chunk's start. */
  async bytes(): Promise<{ parts: Buffer[]; meta: ChunkMeta }> {
    const parts: Buffer[] = [];
    let pos = 0, uncompressed = 0, dictOffset: number | null = null, dataOffset: number | null = null;
    const encodings = new Set<number>([E_RLE]);
    const stats: ChunkMeta['stats'] = { nulls: 0 };
    const add = (raw: number, body: Buffer, header: Buffer) => { parts.push(header, body); pos += header.length + body.length; uncompressed += header.length + raw; };
    const dictUsed = this.pages.some((p) => p.encoding === E_PLAIN_DICTIONARY);
    if (dictUsed) {
      const d = new Bytes(this.dictChars + this.dictKeys.length * 4 + 16);
      for (const s of this.dictKeys) {
        const len = Buffer.byteLength(s, 'utf8');
        d.u32(len); d.ensure(len); d.pos += d.buf.write(s, d.pos, 'utf8');
      }
      const raw = d.view();
      const body = this.compress ? await this.compress(raw) : raw;
      dictOffset = pos;
      encodings.add(E_PLAIN);
      add(raw.length, body, pageHeader(PAGE_DICTIONARY, raw.length, body.length, this.dictKeys.length, E_PLAIN));
    }
    let min = Infinity, max = -Infinity, slots = 0;
    for (const p of this.pages) {
      const body = await p.body;
      dataOffset ??= pos;
      encodings.add(p.encoding);
      add(p.raw, body, pageHeader(PAGE_DATA, p.raw, body.length, p.slots, p.encoding));
      stats.nulls += p.nulls;
      slots += p.slots;
      if (p.min !== undefined && p.min < min) min = p.min;
      if (p.max !== undefined && p.max > max) max = p.max;
    }
    if (min !== Infinity) {
      if (this.type === T_INT32) { stats.min = Buffer.alloc(4); stats.min.writeInt32LE(min); stats.max = Buffer.alloc(4); stats.max.writeInt32LE(max); }
      else if (this.type === T_DOUBLE) {
        // signed zeros as the spec asks: -0 for a zero min, +0 for a zero max
        stats.min = Buffer.alloc(8); stats.min.writeDoubleLE(min === 0 ? -0 : min); stats.max = Buffer.alloc(8); stats.max.writeDoubleLE(max === 0 ? 0 : max);
      } else if (this.type === T_BOOLEAN) { stats.min = Buffer.from([min]); stats.max = Buffer.from([max]); }
    }
    if (this.leaf.kind === 'string' && dictUsed && this.pages.every((p) => p.encoding === E_PLAIN_DICTIONARY)) {
      // min/max only where they are cheap (over the dictionary); UTF-16 order is code point order unless a
      // surrogate meets U+E000..U+FFFF.
      let lo: string | undefined, hi: string | undefined;
      for (const s of this.dictKeys) { if (lo === undefined || s < lo) lo = s; if (hi === undefined || s > hi) hi = s; }
      if (lo !== undefined && hi !== undefined && lo.length <= 64 && hi.length <= 64 && !/[\ud800-\uffff]/.test(lo + hi)) {
        stats.min = Buffer.from(lo, 'utf8'); stats.max = Buffer.from(hi, 'utf8');
      }
    }
    return {
      parts,
      meta: {
        type: this.type, encodings: [...encodings], path: this.leaf.path, codec: this.compress ? CODEC_ZSTD : CODEC_UNCOMPRESSED,
        numValues: slots, uncompressed, compressed: pos, dataOffset: dataOffset ?? 0, dictOffset, stats,
      },
    };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Footer

export interface RowGroupMeta { numRows: number; offset: number; chunks: ChunkMeta[] }

function writeChunkMeta(o: Bytes, m: ChunkMeta) {
  o.elemBegin();
  o.i64(2, m.dictOffset ?? m.dataOffset);
  o.structBegin(3);
  o.i32(1, m.type);
  o.listBegin(2, 5, m.encodings.length);
  for (const e of m.encodings) o.zigzag(e);
  o.listBegin(3, 8, m.path.length);
  for (const p of m.path) { const b = Buffer.from(p, 'utf8'); o.varint(b.length); o.bytes(b); }
  o.i32(4, m.codec);
  o.i64(5, m.numValues);
  o.i64(6, m.uncompressed);
  o.i64(7, m.compressed);
  o.i64(9, m.dataOffset);
  if (m.dictOffset !== null) o.i64(11, m.dictOffset);
  o.structBegin(12);
  o.i64(3, m.stats.nulls);
  if (m.stats.max) o.binary(5, m.stats.max);
  if (m.stats.min) o.binary(6, m.stats.min);
  o.structEnd();
  o.structEnd();
  o.elemEnd();
}

/** The file footer: FileMetaData, its length and the closing magic. */
export function footer(roots: SchemaNode[], groups: RowGroupMeta[]): Buffer {
  const o = new Bytes(4096);
  o.i32(1, 1);
  writeSchema(o, roots);
  o.i64(3, groups.reduce((s, g) => s + g.numRows, 0));
  o.listBegin(4, 12, groups.length);
  groups.forEach((g, ordinal) => {
    o.elemBegin();
    o.listBegin(1, 12, g.chunks.length);
    for (const c of g.chunks) writeChunkMeta(o, c);
    o.i64(2, g.chunks.reduce((s, c) => s + c.uncompressed, 0));
    o.i64(3, g.numRows);
    o.i64(5, g.offset);
    o.i64(6, g.chunks.reduce((s, c) => s + c.compressed, 0));
    o.i16(7, ordinal);
    o.elemEnd();
  });
  o.binary(6, 'agentforge table writer');
  o.stop();
  const len = o.pos;
  o.u32(len);
  o.bytes(Buffer.from('PAR1'));
  return Buffer.from(o.view());
}

export const MAGIC = Buffer.from('PAR1');
