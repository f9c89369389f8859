/*
 * TensorBoard event files from the ledger's metrics table, written in TS (no TensorFlow): TFRecord framing
 * (length, masked CRC-32C of the length, payload, masked CRC-32C of the payload) around Event protos carrying one
 * scalar Summary.Value each. One log dir per node execution, named like the SFT trainer's own:
 * <logdir>/<node>-<key12>; a dir where the trainer already wrote events (SFT) is left alone.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSqlSession, runReadOnly } from '../../storage/sql.ts';
import { sqlString } from '../../storage/codec.ts';

const OURS = 'events.out.tfevents.0.agentforge-report';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32C (Castagnoli), the checksum TFRecord uses. */
export function crc32c(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const masked = (b: Uint8Array) => ((((crc32c(b) >>> 15) | (crc32c(b) << 17)) >>> 0) + 0xa282ead8) >>> 0;

function varint(n: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
  out.push(Number(v));
  return out;
}
const bytesField = (tag: number, b: Uint8Array) => [tag, ...varint(b.length), ...b];

function event(wallTime: number, step: number, body: number[]): Uint8Array {
  const wt = Buffer.alloc(8);
  wt.writeDoubleLE(wallTime);
  return Uint8Array.from([0x09, ...wt, 0x10, ...varint(step), ...body]);
}

function scalarEvent(wallTime: number, step: number, tag: string, value: number): Uint8Array {
  const f = Buffer.alloc(4);
  f.writeFloatLE(value);
  const val = [...bytesField(0x0a, Buffer.from(tag, 'utf8')), 0x15, ...f];
  const summary = bytesField(0x0a, Uint8Array.from(val));
  return event(wallTime, step, bytesField(0x2a, Uint8Array.from(summary)));
}

function record(data: Uint8Array): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(data.length));
  const c1 = Buffer.alloc(4); c1.writeUInt32LE(masked(len));
  const c2 = Buffer.alloc(4); c2.writeUInt32LE(masked(data));
  return Buffer.concat([len, c1, Buffer.from(data), c2]);
}

export interface Scalar { tag: string; step: number; value: number; wallTime: number }

/** One event file with these scalars (the file-version event first, as TensorBoard expects). */
export function writeEventFile(dir: string, scalars: Scalar[]): string {
  mkdirSync(dir, { recursive: true });
  const first = scalars.length ? scalars[0].wallTime : Date.now() / 1000;
  const parts = [record(event(first, 0, bytesField(0x1a, Buffer.from('brain.Event:2'))))];
  for (const s of scalars) parts.push(record(scalarEvent(s.wallTime, s.step, s.tag, s.value)));
  const path = join(dir, OURS);
  writeFileSync(path, Buffer.concat(parts));
  return path;
}

/**
 * Every node's metrics as TensorBoard scalars, one dir per (node, key); metrics without a step (eval summaries)
 * go at step 0. Returns the dirs written.
 */
export async function exportTensorboard(storeDir: string, logDir: string, dag: string | null): Promise<string[]> {
  const session = await openSqlSession(storeDir);
  try {
    if (!session.views.includes('metrics')) return [];
    const where = dag ? `WHERE m.key IN (SELECT key FROM executions WHERE dag = ${sqlString(dag)})` : '';
    const { rows } = await runReadOnly(session, `SELECT m.node_id, m.key, m.name, coalesce(m.step, 0)::BIGINT AS step,
      arg_max(m.value, m.ts) AS value, epoch_ms(max(m.ts)) / 1000.0 AS wall FROM metrics m ${where}
      GROUP BY ALL HAVING arg_max(m.value, m.ts) IS NOT NULL ORDER BY m.node_id, m.key, step, m.name`);
    const byDir = new Map<string, Scalar[]>();
    for (const r of rows) {
      const dir = join(logDir, `${r.node_id}-${String(r.key).slice(0, 12)}`);
      const list = byDir.get(dir) ?? [];
      list.push({ tag: String(r.name), step: Number(r.step), value: Number(r.value), wallTime: Number(r.wall) });
      byDir.set(dir, list);
    }
    const written: string[] = [];
    for (const [dir, scalars] of byDir) {
      const own = existsSync(dir) && readdirSync(dir).some((f) => f.startsWith('events.out.tfevents.') && f !== OURS);
      if (own) continue;
      writeEventFile(dir, scalars);
      written.push(dir);
    }
    return written;
  } finally {
    session.close();
  }
}
