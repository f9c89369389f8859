export class ByteWriter {
  buf: Buffer;
  pos: number;
  constructor(size?: number);
  ensure(n: number): void;
  alloc(size: number): Buffer;
  byte(b: number): void;
  u32(v: number): void;
  bytes(b: Uint8Array): void;
  varint(n: number): void;
  zigzag(n: number): void;
  view(): Buffer;
}
export const bitWidth: (max: number) => number;
export function hybrid(out: ByteWriter, vals: ArrayLike<number>, start: number, end: number, bw: number): void;
export function deltaBinaryPacked(out: ByteWriter, vals: Int32Array | number[], n: number): void;
export const SPEC: number, PLAIN: number, DELTA: number, DICT: number;
export function encodePage(job: Uint8Array, spec: number[], emit: (k: number, body: Buffer) => void): void;
