import { createRequire } from 'node:module';

/*
 * zstd through @toondepauw/node-zstd (N-API, prebuilt per platform as optional packages; no install script).
 * `encode` runs on the libuv thread pool. When the binding cannot load (an unsupported platform), `zstd()` is null
 * and the table writer lets DuckDB do the compression instead.
 */

interface Native {
  Encoder: new (level: number) => { encode(b: Buffer): Promise<Buffer>; encodeSync(b: Buffer): Buffer };
  Decoder: new () => { decodeSync(b: Buffer): Buffer };
}

export interface Zstd {
  compress(b: Buffer): Promise<Buffer>;
  compressSync(b: Buffer): Buffer;
  decompressSync(b: Buffer): Buffer;
}

let cached: Zstd | null | undefined;

export function zstd(): Zstd | null {
  if (cached !== undefined) return cached;
  try {
    if (process.env.AGENTFORGE_NO_NATIVE_ZSTD) throw new Error('disabled');
    const native = createRequire(import.meta.url)('@toondepauw/node-zstd') as Native;
    const enc = new native.Encoder(LEVEL);
    const dec = new native.Decoder();
    cached = { compress: (b) => enc.encode(b), compressSync: (b) => enc.encodeSync(b), decompressSync: (b) => dec.decodeSync(b) };
  } catch {
    cached = null;
  }
  return cached;
}

/** zstd level of table column chunks (DuckDB writes 3; 1 is twice as fast for a few % more bytes). */
export const LEVEL = 1;
