/*
 * The byte-only half of Parquet page encoding: levels (RLE/bit-packed hybrid), length deltas, dictionary indices,
 * page body assembly. Plain JavaScript, because it is also the entry of the page worker thread, which must load
 * under every way the project runs (tsx, vitest, the CLI bundle) without a TypeScript loader. The main thread runs
 * the same `encodePage` for a table's first pages, so both paths write the same bytes.
 */
import { createRequire } from 'node:module';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

/** Growable byte buffer with the little-endian and varint writers the format needs. */
export class ByteWriter {
  constructor(size = 256) { this.buf = Buffer.allocUnsafe(size); this.pos = 0; }
  ensure(n) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = this.alloc(size);
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }
  alloc(size) { return Buffer.allocUnsafe(size); }
  byte(b) { this.ensure(1); this.buf[this.pos++] = b; }
  u32(v) { this.ensure(4); this.buf.writeUInt32LE(v, this.pos); this.pos += 4; }
  bytes(b) { this.ensure(b.length); this.buf.set(b, this.pos); this.pos += b.length; }
  /** Unsigned varint of a non-negative integer up to 2^53. */
  varint(n) {
    this.ensure(10);
    while (n > 127) { this.buf[this.pos++] = (n % 128) | 128; n = Math.floor(n / 128); }
    this.buf[this.pos++] = n;
  }
  zigzag(n) { this.varint(n >= 0 ? n * 2 : -n * 2 - 1); }
  view() { return this.buf.subarray(0, this.pos); }
}

export const bitWidth = (max) => (max <= 0 ? 0 : 32 - Math.clz32(max));

/**
 * RLE/bit-packed hybrid encoding of vals[start, end) (small non-negative ints of `bw` bits, bw <= 24): runs of 8 or
 * more equal values become RLE runs, the rest bit-packed groups of 8 (only the last one padded).
 */
export function hybrid(out, vals, start, end, bw) {
  const vbytes = (bw + 7) >> 3;
  const packed = (a, b) => {
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
  const rle = (v, count) => {
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
function packBits(out, vals, start, count, total, w) {
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
export function deltaBinaryPacked(out, vals, n) {
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

/**
 * A staged page is one buffer plus SPEC numbers per column: slots, definition levels (offset, max), repetition
 * levels (offset or -1, max), then the values: PLAIN (offset, length: the bytes as they are), DELTA (offset of
 * int32 byte lengths, count, text length: the UTF-8 text follows the lengths) or DICT (offset of int32 indices,
 * count, bit width).
 */
export const SPEC = 9, PLAIN = 0, DELTA = 1, DICT = 2;

const lv = new ByteWriter(1 << 16), body = new ByteWriter(1 << 16);

/** Calls emit(k, body) with column k's page body (scratch memory, valid until emit returns). */
export function encodePage(job, spec, emit) {
  // Level streams staged once (equal ones share an offset) are encoded once: key offset:max → [start, end) in lv.
  const seen = new Map();
  lv.pos = 0;
  const levels = (off, n, max) => {
    const key = off * 256 + max; // levels are bytes: max < 256
    let at = seen.get(key);
    if (!at) {
      const s = lv.pos;
      lv.u32(0);
      hybrid(lv, job, off, off + n, bitWidth(max));
      lv.buf.writeUInt32LE(lv.pos - s - 4, s);
      seen.set(key, (at = [s, lv.pos]));
    }
    body.bytes(lv.buf.subarray(at[0], at[1]));
  };
  for (let c = 0, k = 0; c < spec.length; c += SPEC, k++) {
    const slots = spec[c], kind = spec[c + 5], x = spec[c + 6], y = spec[c + 7], z = spec[c + 8];
    body.pos = 0;
    if (spec[c + 3] >= 0) levels(spec[c + 3], slots, spec[c + 4]);
    levels(spec[c + 1], slots, spec[c + 2]);
    if (kind === PLAIN) body.bytes(job.subarray(x, x + y));
    else if (kind === DELTA) {
      deltaBinaryPacked(body, new Int32Array(job.buffer, job.byteOffset + x, y), y);
      body.bytes(job.subarray(x + 4 * y, x + 4 * y + z));
    } else {
      const bw = z;
      body.ensure(16 + y * 2);
      body.byte(bw);
      hybrid(body, new Int32Array(job.buffer, job.byteOffset + x, y), 0, y, bw);
    }
    emit(k, body.view());
  }
}

// The worker thread: { id, slab, job, len, spec, zstd } in (job: a shared slab, freed once read, or a buffer of its
// own); { id, out, ends, raws } or { id, error } back.
if (!isMainThread && workerData?.agentforgePages) {
  const busy = new Int32Array(workerData.busy);
  let enc = null;
  parentPort.on('message', ({ id, slab, job, len, spec, zstd }) => {
    try {
      if (zstd && !enc) enc = new (createRequire(import.meta.url)('@toondepauw/node-zstd').Encoder)(workerData.level);
      const parts = [], raws = [];
      let total = 0;
      try {
        encodePage(new Uint8Array(job, 0, len), spec, (k, raw) => {
          const b = zstd ? enc.encodeSync(raw) : Buffer.from(raw);
          parts.push(b); raws.push(raw.length); total += b.length;
        });
      } finally {
        if (slab >= 0) { Atomics.store(busy, slab, 0); Atomics.notify(busy, slab); }
      }
      const out = new Uint8Array(total), ends = [];
      let at = 0;
      for (const p of parts) { out.set(p, at); at += p.length; ends.push(at); }
      parentPort.postMessage({ id, out: out.buffer, ends, raws }, [out.buffer]);
    } catch (e) {
      parentPort.postMessage({ id, error: String(e?.stack ?? e) });
    }
  });
}
