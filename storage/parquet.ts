/*
 * A small Parquet writer for the table store (format 1.0 footer, data pages v1, every column chunk ZSTD): just what
 * storage/shred.ts produces, i.e. OPTIONAL leaves of BOOLEAN / INT32 / DOUBLE / BYTE_ARRAY (UTF8 or JSON) under
 * OPTIONAL groups and 3-level LISTs, exactly the schema DuckDB's own writer gives these column types.
 *
 * Encodings: levels RLE/bit-packed hybrid; strings dictionary-encoded (PLAIN_DICTIONARY) while the dictionary stays
 * small, else DELTA_LENGTH_BYTE_ARRAY (one UTF-8 encode of the joined column, no per-string copies); numbers and
 * booleans PLAIN. Compression runs on the libuv thread pool while the next column is encoded.
 */

// Parquet enums (parquet.thrift).
export const T_BOOLEAN = 0, T_INT32 = 1, T_DOUBLE = 5, T_BYTE_ARRAY = 6;
const REQUIRED = 0, OPTIONAL = 1, REPEATED = 2;
const CT_UTF8 = 0, CT_LIST = 3, CT_INT_32 = 17, CT_JSON = 19;
const E_PLAIN = 0, E_PLAIN_DICTIONARY = 2, E_RLE = 3, E_DELTA_LENGTH_BYTE_ARRAY = 6;
const CODEC_UNCOMPRESSED = 0, CODEC_ZSTD = 6;
const PAGE_DATA = 0, PAGE_DICTIONARY = 2;

/** Growable byte buffer with the primitive writers the format needs (little-endian, varints, Thrift compact). */
export class Bytes {
  buf: Buffer;
  pos = 0;
  private fieldStack: number[] = [];
  private lastField = 0;
  constructor(size = 256) { this.buf = Buffer.allocUnsafe(size); }
  ensure(n: number) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = Buffer.allocUnsafe(size);
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }
  byte(b: number) { this.ensure(1); this.buf[this.pos++] = b; }
  u32(v: number) { this.ensure(4); this.buf.writeUInt32LE(v, this.pos); this.pos += 4; }
  bytes(b: Uint8Array) { this.ensure(b.length); this.buf.set(b, this.pos); this.pos += b.length; }
  /** Unsigned varint of a non-negative integer up to 2^53. */
  varint(n: number) {
    this.ensure(10);
    while (n > 127) { this.buf[this.pos++] = (n % 128) | 128; n = Math.floor(n / 128); }
    this.buf[this.pos++] = n;
  }
  zigzag(n: number) { this.varint(n >= 0 ? n * 2 : -n * 2 - 1); }
  view(): Buffer { return this.buf.subarray(0, this.pos); }

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

const bitWidth = (max: number) => (max <= 0 ? 0 : 32 - Math.clz32(max));

/**
 * RLE/bit-packed hybrid encoding of vals[start, end) (small non-negative ints of `bw` bits, bw <= 24): runs of 8 or
 * more equal values become RLE runs, the rest bit-packed groups of 8 (only the last one padded).
 */
export function hybrid(out: Bytes, vals: ArrayLike<number>, start: number, end: number, bw: number) {
  const vbytes = (bw + 7) >> 3;
  const packed = (a: number, b: number) => {
    const groups = Math.ceil((b - a) / 8);
    out.varint(groups * 2 + 1);
    out.ensure(groups * bw + 4);
    const buf = out.buf;
    let pos = out.pos, acc = 0, bits = 0;
    const stop = a + groups * 8;
    for (let i = a; i < stop; i++) {
      acc |= (i < b ? vals[i] : 0) << bits;
      bits += bw;
      while (bits >= 8) { buf[pos++] = acc & 255; acc >>>= 8; bits -= 8; }
    }
    out.pos = pos;
  };
  const rle = (v: number, count: number) => {
    out.varint(count * 2);
    for (let k = 0; k < vbytes; k++) out.byte((v >>> (8 * k)) & 255);
  };
  let pend = start, i = start;
  while (i < end) {
    const v = vals[i];
    let j = i + 1;
    while (j < end && vals[j] === v) j++;
    if (j - i >= 8) {
      let k = i;
      if (i > pend) {
        const rem = (i - pend) % 8;
        if (rem) k = i + 8 - rem;
        if (j - k < 8) { i = j; continue; }
        packed(pend, k);
      }
      rle(v, j - k);
      pend = j;
    }
    i = j;
  }
  if (pend < end) packed(pend, end);
}

/** Bit-packs `count` values of width w (<= 32) little-endian, LSB first, into out. */
function packBits(out: Bytes, vals: ArrayLike<number>, start: number, count: number, total: number, w: number) {
  if (w === 0) return;
  out.ensure(Math.ceil((total * w) / 8) + 8);
  const buf = out.buf;
  let pos = out.pos, acc = 0, bits = 0;
  if (w <= 24) {
    for (let i = 0; i < total; i++) {
      acc |= (i < count ? vals[start + i] : 0) << bits;
      bits += w;
      while (bits >= 8) { buf[pos++] = acc & 255; acc >>>= 8; bits -= 8; }
    }
    out.pos = pos;
    return;
  }
  for (let i = 0; i < total; i++) {
    const v = i < count ? vals[start + i] : 0;
    acc += v * 2 ** bits; // exact below 2^53: bits < 8 and v < 2^32
    bits += w;
    while (bits >= 8) { buf[pos++] = acc % 256; acc = Math.floor(acc / 256); bits -= 8; }
  }
  out.pos = pos;
}

/** DELTA_BINARY_PACKED encoding of int32 values (block 128, 4 miniblocks of 32). */
const DELTAS = new Float64Array(128);
export function deltaBinaryPacked(out: Bytes, vals: Int32Array | number[], n: number) {
  out.varint(128); out.varint(4); out.varint(n); out.zigzag(n ? vals[0] : 0);
  const deltas = DELTAS;
  for (let b = 1; b < n; b += 128) {
    const m = Math.min(128, n - b);
    let min = Infinity;
    for (let k = 0; k < m; k++) { const d = vals[b + k] - vals[b + k - 1]; deltas[k] = d; if (d < min) min = d; }
    out.zigzag(min);
    const widths = [0, 0, 0, 0];
    for (let mb = 0; mb < 4; mb++) {
      let max = 0;
      for (let k = mb * 32; k < Math.min(m, mb * 32 + 32); k++) { const d = deltas[k] - min; deltas[k] = d; if (d > max) max = d; }
      widths[mb] = max === 0 ? 0 : max < 2 ** 31 ? 32 - Math.clz32(max) : 32;
    }
    for (const w of widths) out.byte(w);
    for (let mb = 0; mb < 4 && mb * 32 < m; mb++) packBits(out, deltas, mb * 32, Math.min(32, m - mb * 32), 32, widths[mb]);
  }
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

/** Encoded level runs shared between the column chunks of one row group (equal streams are encoded once). */
export class LevelCache {
  private reps = new Map<unknown, Buffer>();
  private defs: { key: Uint8Array; max: number; bytes: Buffer }[] = [];
  levels(leaf: LeafInfo, c: ColumnSlice): Buffer {
    let r: Buffer | undefined;
    if (leaf.maxRep > 0) {
      r = this.reps.get(c.reps);
      if (!r) { r = levelBytes(c.reps!, c.s0, c.s1, leaf.maxRep); this.reps.set(c.reps, r); }
    }
    const key = (c.defs as Uint8Array).subarray(c.s0, c.s1);
    let d = this.defs.find((e) => e.max === leaf.maxDef && e.key.length === key.length && Buffer.compare(e.key, key) === 0)?.bytes;
    if (!d) { d = levelBytes(c.defs, c.s0, c.s1, leaf.maxDef); this.defs.push({ key, max: leaf.maxDef, bytes: d }); }
    return r ? Buffer.concat([r, d]) : d;
  }
}

function levelBytes(vals: ArrayLike<number>, s0: number, s1: number, max: number): Buffer {
  const out = new Bytes(64 + ((s1 - s0) >> 2));
  levelsInto(out, vals, s0, s1, max);
  return Buffer.from(out.view());
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

function levelsInto(out: Bytes, vals: ArrayLike<number>, s0: number, s1: number, max: number) {
  const at = out.pos;
  out.u32(0);
  hybrid(out, vals, s0, s1, bitWidth(max));
  out.buf.writeUInt32LE(out.pos - at - 4, at);
}

/** Scratch memory for assembling pages (one page at a time, synchronously). */
const scratch = { text: new Bytes(1 << 16), body: new Bytes(1 << 16), int32: new Int32Array(1 << 12) };
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

/**
 * One leaf's column chunk of a row group, built a page at a time (pages compress on the thread pool as they come).
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

  /** Queues a page assembled in `raw` (scratch memory: copied into pooled memory until compressed). */
  private push(raw: Buffer, slots: number, nulls: number, encoding: number, minmax?: { min: number; max: number }) {
    let body: Promise<Buffer> | Buffer;
    if (this.compress) {
      const { buf, release } = pool.take(raw);
      body = this.compress(buf).then((b) => { release(); return b; }, (e) => { release(); throw e; });
    } else body = Buffer.from(raw);
    this.pages.push({ body, raw: raw.length, slots, nulls, encoding, ...minmax });
  }

  addPage(c: ColumnSlice, cache: LevelCache) {
    const nSlots = c.s1 - c.s0, nVals = c.v1 - c.v0;
    if (nSlots === 0) return;
    const levels = cache.levels(this.leaf, c);
    const nulls = nSlots - nVals;
    const kind = this.leaf.kind;
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
      if (this.dictState === 'on' && this.dictPage(c, vals, levels, nSlots, nulls)) return;
      const lens = scratchInt32(nVals);
      let units = 0;
      for (let i = 0; i < nVals; i++) units += (lens[i] = vals[c.v0 + i].length);
      const text = scratch.text;
      text.pos = 0;
      text.ensure(units + 64);
      // Values joined and UTF-8 encoded a few thousand at a time: one native call each, no per-value copies.
      for (let a = 0; a < nVals; a += JOIN_CHUNK) {
        const b = Math.min(a + JOIN_CHUNK, nVals);
        const joined = vals.slice(c.v0 + a, c.v0 + b).join('');
        text.ensure(joined.length * 3);
        const written = utf8.encodeInto(joined, text.buf.subarray(text.pos)).written;
        if (written !== joined.length) {
          // Not ASCII: byte lengths per value; surrogate halves split across values would pair up in the join.
          let sum = 0;
          for (let i = a; i < b; i++) sum += (lens[i] = utf8Length(vals[c.v0 + i]));
          if (sum !== written) {
            for (let i = a; i < b; i++) { const s = vals[c.v0 + i]; lens[i] = Buffer.byteLength(s, 'utf8'); text.ensure(lens[i]); text.pos += text.buf.write(s, text.pos, 'utf8'); }
            continue;
          }
        }
        text.pos += written;
      }
      const body = scratch.body;
      body.pos = 0;
      body.ensure(levels.length + 64 + Math.ceil(nVals * 4.1) + text.pos);
      body.bytes(levels);
      deltaBinaryPacked(body, lens, nVals);
      body.bytes(text.view());
      this.push(body.view(), nSlots, nulls, E_DELTA_LENGTH_BYTE_ARRAY);
    } else if (kind === 'int32' || kind === 'double') {
      const width = kind === 'int32' ? 4 : 8;
      scratch.body.ensure(levels.length + nVals * width);
      const body = scratch.body.buf.subarray(0, levels.length + nVals * width);
      levels.copy(body, 0);
      const src = c.vals as Int32Array | Float64Array;
      let min = Infinity, max = -Infinity;
      for (let i = c.v0; i < c.v1; i++) { const v = src[i]; if (v < min) min = v; if (v > max) max = v; }
      Buffer.from(src.buffer, src.byteOffset + c.v0 * width, nVals * width).copy(body, levels.length);
      this.push(body, nSlots, nulls, E_PLAIN, nVals ? { min, max } : undefined);
    } else {
      const src = c.vals as Uint8Array;
      scratch.body.ensure(levels.length + ((nVals + 7) >> 3));
      const body = scratch.body.buf.subarray(0, levels.length + ((nVals + 7) >> 3)).fill(0);
      levels.copy(body, 0);
      let t = 0;
      for (let i = 0; i < nVals; i++) if (src[c.v0 + i]) { body[levels.length + (i >> 3)] |= 1 << (i & 7); t++; }
      this.push(body, nSlots, nulls, E_PLAIN, nVals ? { min: t === nVals ? 1 : 0, max: t > 0 ? 1 : 0 } : undefined);
    }
  }

  /** A dictionary-encoded page; false (dictionary dropped for the rest of the chunk) when it outgrows its limit. */
  private dictPage(c: ColumnSlice, vals: string[], levels: Buffer, nSlots: number, nulls: number): boolean {
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
    const bw = Math.max(1, bitWidth(this.dictKeys.length - 1));
    const body = scratch.body;
    body.pos = 0;
    body.ensure(levels.length + 16 + nVals * 2);
    body.bytes(levels);
    body.byte(bw);
    hybrid(body, idx, 0, nVals, bw);
    this.push(body.view(), nSlots, nulls, E_PLAIN_DICTIONARY);
    return true;
  }

  get numPages() { return this.pages.length; }

  /** The chunk's bytes (dictionary page first) for a file offset, and its metadata. */
  async bytes(offset: number): Promise<{ parts: Buffer[]; meta: ChunkMeta }> {
    const parts: Buffer[] = [];
    let pos = offset, uncompressed = 0, dictOffset: number | null = null, dataOffset: number | null = null;
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
        numValues: slots, uncompressed, compressed: pos - offset, dataOffset: dataOffset ?? offset, dictOffset, stats,
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
