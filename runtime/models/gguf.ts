/*
 * A GGUF file's header, read and checked in TS before anything runs: magic, version, metadata (architecture, chat
 * template) and every tensor's type. Dequantizing the weights into a Hugging Face dir is the runtime node's job
 * (transformers' GGUF loading); this only makes sure that step can succeed, so a bad file fails at once.
 * Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count, metadata key/values, tensor
 * infos (name, u32 n_dims, u64 dims[], u32 ggml type, u64 offset). Version 1 used u32 counts and lengths.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** ggml tensor types by id (ggml.h, as gguf-py 0.19 knows them). */
export const GGML_TYPES: Readonly<Record<number, string>> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K',
  12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL',
  21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16',
  34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4', 40: 'NVFP4', 41: 'Q1_0',
};

/**
 * Types a file may hold that gguf-py can turn into floats (the runtime node's convert-gguf). Q8_1 and Q8_K exist
 * only inside llama.cpp's matmuls, and Q1_0 is newer than gguf-py's dequantizers.
 */
export const GGUF_DEQUANTIZABLE: ReadonlySet<string> = new Set(Object.values(GGML_TYPES).filter((t) => !['Q8_1', 'Q8_K', 'Q1_0'].includes(t)));

/** A model whose tensor types the runtime node cannot dequantize: an error naming the file, tensor and type. */
export function checkDequantizable(file: string, header: GgufHeader): void {
  const bad = header.tensors.find((t) => !GGUF_DEQUANTIZABLE.has(t.type));
  if (bad) {
    throw new Error(`GGUF ${file}: tensor ${bad.name} is ${bad.type}, a quantization the GGUF loader cannot dequantize ` +
      `(${header.types[bad.type]} tensors of that type); re-quantize the model to a known type (e.g. Q8_0, Q4_K_M or F16) with llama.cpp, or use its safetensors release`);
  }
}

export interface GgufTensor { name: string; type: string; shape: number[] }
export interface GgufHeader {
  version: number;
  architecture: string | null;
  name: string | null;
  chatTemplate: string | null;
  /** Scalar metadata (arrays are summarised by their length). */
  metadata: Record<string, string | number | boolean | bigint | { array: number }>;
  tensors: GgufTensor[];
  /** Tensor count per type, e.g. {Q8_0: 210, F32: 61}. */
  types: Record<string, number>;
}

class Reader {
  private buf = Buffer.alloc(1 << 20);
  private start = 0; // file offset of buf[0]
  private end = 0; // valid bytes in buf
  pos = 0;
  constructor(private readonly fd: number, private readonly file: string) {}

  private need(n: number): number {
    if (this.pos + n > this.start + this.end) {
      if (n > this.buf.length) this.buf = Buffer.alloc(n * 2);
      this.start = this.pos;
      this.end = readSync(this.fd, this.buf, 0, this.buf.length, this.pos);
      if (this.end < n) throw new Error(`${this.file}: the GGUF header ends early (at byte ${this.pos + this.end}); the file is truncated`);
    }
    const at = this.pos - this.start;
    this.pos += n;
    return at;
  }
  u8() { return this.buf.readUInt8(this.need(1)); }
  u32() { return this.buf.readUInt32LE(this.need(4)); }
  u64(): bigint { return this.buf.readBigUInt64LE(this.need(8)); }
  /** A u64 count or length that must fit comfortably in a JS number. */
  count(v1: boolean, what: string): number {
    const n = v1 ? BigInt(this.u32()) : this.u64();
    if (n > 1n << 40n) throw new Error(`${this.file}: implausible ${what} ${n} at byte ${this.pos}; the file is not a valid GGUF`);
    return Number(n);
  }
  bytes(n: number): Buffer { const at = this.need(n); return this.buf.subarray(at, at + n); }
  str(v1: boolean) { return this.bytes(this.count(v1, 'string length')).toString('utf8'); }
  skip(n: number) { this.need(0); this.pos += n; }
}

const SCALAR: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

function value(r: Reader, type: number, v1: boolean, key: string, keep: boolean): GgufHeader['metadata'][string] | undefined {
  switch (type) {
    case 0: return r.u8();
    case 1: return r.bytes(1).readInt8(0);
    case 2: return r.bytes(2).readUInt16LE(0);
    case 3: return r.bytes(2).readInt16LE(0);
    case 4: return r.u32();
    case 5: return r.bytes(4).readInt32LE(0);
    case 6: return r.bytes(4).readFloatLE(0);
    case 7: return r.u8() !== 0;
    case 8: return r.str(v1);
    case 10: return r.u64();
    case 11: return r.bytes(8).readBigInt64LE(0);
    case 12: return r.bytes(8).readDoubleLE(0);
    case 9: {
      const itemType = r.u32();
      const n = r.count(v1, `length of array ${key}`);
      if (SCALAR[itemType] !== undefined) r.skip(n * SCALAR[itemType]);
      else for (let i = 0; i < n; i++) value(r, itemType, v1, key, false);
      return keep ? { array: n } : undefined;
    }
    default:
      throw new Error(`metadata ${key} has unknown value type ${type}`);
  }
}

/** Reads and validates a GGUF header; every problem is an error naming the file and the fix. */
export function readGgufHeader(file: string): GgufHeader {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new Error(`GGUF ${file}: cannot open (${(e as NodeJS.ErrnoException).code}); pass the path of a .gguf file`);
  }
  try {
    const r = new Reader(fd, file);
    const magic = r.bytes(4).toString('latin1');
    if (magic !== 'GGUF') throw new Error(`GGUF ${file}: not a GGUF file (magic ${JSON.stringify(magic)}, want "GGUF"); pass a .gguf model file`);
    const version = r.u32();
    if (version < 1 || version > 3) throw new Error(`GGUF ${file}: unsupported GGUF version ${version} (1–3 are known); convert it with a current llama.cpp`);
    const v1 = version === 1;
    const nTensors = r.count(v1, 'tensor count');
    const nKv = r.count(v1, 'metadata count');
    const metadata: GgufHeader['metadata'] = {};
    let chatTemplate: string | null = null;
    for (let i = 0; i < nKv; i++) {
      const key = r.str(v1);
      const type = r.u32();
      let v: GgufHeader['metadata'][string] | undefined;
      try {
        v = value(r, type, v1, key, true);
      } catch (e) {
        throw new Error(`GGUF ${file}: ${(e as Error).message}; the file is corrupt or from an unknown GGUF dialect`);
      }
      if (key === 'tokenizer.chat_template' && typeof v === 'string') chatTemplate = v;
      else if (v !== undefined && !(typeof v === 'string' && v.length > 1024)) metadata[key] = v;
    }
    const tensors: GgufTensor[] = [];
    const types: Record<string, number> = {};
    for (let i = 0; i < nTensors; i++) {
      const name = r.str(v1);
      const nDims = r.u32();
      if (nDims > 8) throw new Error(`GGUF ${file}: tensor ${name} has ${nDims} dimensions; the file is corrupt`);
      const shape = Array.from({ length: nDims }, () => Number(v1 ? BigInt(r.u32()) : r.u64()));
      const typeId = r.u32();
      r.u64(); // offset
      const type = GGML_TYPES[typeId];
      if (type === undefined) {
        throw new Error(`GGUF ${file}: tensor ${name} uses an unknown quantization (ggml type ${typeId}); ` +
          `re-quantize the model to a known type (e.g. Q8_0, Q4_K_M or F16) with llama.cpp, or use its safetensors release`);
      }
      types[type] = (types[type] ?? 0) + 1;
      tensors.push({ name, type, shape });
    }
    const str = (k: string) => (typeof metadata[k] === 'string' ? (metadata[k] as string) : null);
    return { version, architecture: str('general.architecture'), name: str('general.name'), chatTemplate, metadata, tensors, types };
  } finally {
    closeSync(fd);
  }
}
