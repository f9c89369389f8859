import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { DuckDBInstance } from '@duckdb/node-api';
import { Trajectory, Verdict } from '../../schemas/trajectory.ts';
type Traj = z.output<typeof Trajectory>;
import { Task } from '../../schemas/task.ts';
import { Rollout } from '../../schemas/rollout.ts';
import { EvalRow, EvalRollout } from '../../schemas/eval.ts';
import { Episode, ScoredEpisode } from '../../schemas/smoke.ts';
import { ToolSpec } from '../../schemas/tool.ts';
import { compileTable, newBuffers, type ColumnBuffers } from '../../storage/shred.ts';
import { RowValidationError, TableReader, TableWriter } from '../../storage/table.ts';
import { sqlString } from '../../storage/codec.ts';
import { mulberry32 } from '../../runtime/engine/rng.ts';
import { makeTrajectory } from '../../bench/fixtures.ts';

/*
 * The compiled validator + column encoder (storage/shred.ts, storage/columnar.ts, storage/parquet.ts) against zod
 * and against the NDJSON → DuckDB path it replaces: same verdict, same stored output, same errors, same tables.
 */

// Feature coverage beyond the project's schemas.
const Features = z.object({
  s: z.string().min(1).max(8),
  exact: z.string().length(2).optional(),
  n: z.number().gt(-5).lte(1e6),
  i32: z.int32().default(7),
  u: z.unknown(),
  lit: z.literal('x'),
  num_lit: z.literal(3).optional(),
  big_enum: z.enum(Array.from({ length: 20 }, (_, k) => `e${k}`) as [string, ...string[]]),
  un: z.union([z.string(), z.number()]).nullable(),
  tup: z.tuple([z.string(), z.number()]).optional(),
  tags: z.array(z.string().nullable()).min(1).max(4),
  grid: z.array(z.array(z.number().int())).default([]),
  strict: z.strictObject({ a: z.boolean(), b: z.string().nullable().default(null) }).optional(),
  loose: z.looseObject({ k: z.number() }).nullable().default(null),
  rs: z.record(z.string(), z.string()).default({}),
  rb: z.record(z.string(), z.boolean()).optional(),
  renum: z.record(z.enum(['a', 'b']), z.number()).optional(),
  deep: z.object({ list: z.array(z.object({ x: z.number().nullable(), y: z.array(z.boolean()).default([]) })).default([]) }).default({ list: [] }),
  email: z.email().optional(),
  trimmed: z.string().trim().optional(),
  refined: z.string().refine((v) => !v.includes('!')).optional(),
});

const SCHEMAS: Record<string, z.ZodObject> = { Trajectory, Verdict, Task, Rollout, EvalRow, EvalRollout, Episode, ScoredEpisode, ToolRow: z.object({ spec: ToolSpec, specs: z.array(ToolSpec) }), Features };

type Rng = () => number;
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const STRINGS = ['', 'a', 'ab', 'hello world', 'héllo', '日本語', '🙂x', 'a\u0000b', 'quote"back\\slash', '{"json":1}', 'x'.repeat(300), 'tool!', ' padded ', 'a@b.co'];

function jsonish(r: Rng, depth = 0): unknown {
  const k = r();
  if (k < 0.15) return null;
  if (k < 0.3) return pick(r, STRINGS);
  if (k < 0.45) return Math.round(r() * 1000) / 10;
  if (k < 0.55) return r() < 0.5;
  if (depth > 2) return 1;
  if (k < 0.75) return Array.from({ length: Math.floor(r() * 3) }, () => jsonish(r, depth + 1));
  return Object.fromEntries(Array.from({ length: Math.floor(r() * 3) }, (_, i) => [`k${i}`, jsonish(r, depth + 1)]));
}

const defOf = (s: unknown) => (s as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;

/** A random value of schema s, usually valid. */
function gen(s: unknown, r: Rng, depth = 0): unknown {
  const d = defOf(s);
  switch (d.type) {
    case 'optional': return r() < 0.25 ? undefined : gen(d.innerType, r, depth);
    case 'nullable': return r() < 0.25 ? null : gen(d.innerType, r, depth);
    case 'default': return r() < 0.35 ? undefined : gen(d.innerType, r, depth);
    case 'string': {
      const ok = STRINGS.filter((x) => (s as z.ZodType).safeParse(x).success);
      return pick(r, ok.length && r() < 0.9 ? ok : STRINGS);
    }
    case 'number': {
      const checks = (d.checks as { _zod: { def: { check: string; format?: string } } }[] | undefined) ?? [];
      const int = d.format || checks.some((c) => c._zod.def.format);
      const v = int ? Math.floor(r() * 200) - 3 : Math.round((r() * 2000 - 10) * 1000) / 1000;
      return checks.some((c) => c._zod.def.check === 'greater_than' || c._zod.def.check === 'less_than') ? Math.abs(v) % 2 : v;
    }
    case 'boolean': return r() < 0.5;
    case 'enum': return pick(r, Object.values(d.entries as Record<string, string>));
    case 'literal': return (d.values as unknown[])[0];
    case 'unknown': case 'any': return jsonish(r);
    case 'union': return gen(pick(r, d.options as unknown[]), r, depth);
    case 'tuple': return (d.items as unknown[]).map((it) => gen(it, r, depth));
    case 'array': return depth > 3 ? [] : Array.from({ length: 1 + Math.floor(r() * 3) }, () => gen(d.element, r, depth + 1));
    case 'record': {
      const kd = defOf(d.keyType);
      if (kd.type === 'enum') return Object.fromEntries(Object.values(kd.entries as Record<string, string>).map((k) => [k, gen(d.valueType, r, depth + 1)]));
      return Object.fromEntries(['a', 'bb', 'c c', '1', 'ü'].filter(() => r() < 0.6).map((k) => [k, gen(d.valueType, r, depth + 1)]));
    }
    case 'object': {
      const o: Record<string, unknown> = {};
      for (const [k, fs] of Object.entries(d.shape as Record<string, unknown>)) {
        const v = gen(fs, r, depth + 1);
        if (v !== undefined || r() < 0.3) o[k] = v;
      }
      if (r() < 0.1) o.extra_key = 1;
      return o;
    }
    default: return jsonish(r);
  }
}

const protoKeyed = () => JSON.parse('{"__proto__": 1, "a": 2}') as unknown;
const symbolKeyed = () => ({ a: 1, [Symbol('s')]: 2 });
const BAD = [undefined, null, 1.5, NaN, Infinity, -0, 'str', '', true, [], {}, -1, 2 ** 40, 2 ** 31, protoKeyed, symbolKeyed, [1, 'a'], { a: 'x' }];

/** Replaces one random node of v (or deletes a key) with an odd value. */
function mutate(v: unknown, r: Rng): unknown {
  const bad = () => { const b = pick(r, BAD); return typeof b === 'function' ? b() : b; };
  if (v === null || typeof v !== 'object' || r() < 0.2) return bad();
  const c: Record<string, unknown> = Array.isArray(v) ? ([...v] as unknown as Record<string, unknown>) : { ...(v as Record<string, unknown>) };
  const keys = Object.keys(c);
  if (!keys.length) return bad();
  const k = pick(r, keys);
  if (!Array.isArray(v) && r() < 0.15) delete c[k];
  else c[k] = mutate(c[k], r);
  return c;
}

function dump(b: ColumnBuffers) {
  return b.d.map((d, i) => ({ d: Array.from(d.view()), r: b.r[i] ? Array.from(b.r[i]!.view()) : null, v: Array.from(b.v[i].a as ArrayLike<unknown>).slice(0, b.v[i].n) }));
}

describe('compiled validator agrees with zod', () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    it(`${name}: same verdict and same stored output on random valid and invalid rows`, () => {
      const table = compileTable(schema);
      expect(table).not.toBeNull();
      const r = mulberry32(name.length * 7919);
      let accepted = 0, rejected = 0, fallback = 0;
      for (let n = 0; n < 1500; n++) {
        let row = gen(schema, r);
        if (n % 2 === 1) row = mutate(row, r);
        const fast = newBuffers(table!.leaves);
        const res = table!.shredRows([row], 0, 1, fast, Infinity);
        const z_ = schema.safeParse(row);
        if (res === -1) {
          // accepted by the compiled checks: zod accepts too, and what was stored is zod's output
          expect(z_.success, `${name} row ${n}: compiled accepted what zod rejects: ${String(z_.error)}`).toBe(true);
          const oracle = newBuffers(table!.leaves);
          expect(table!.shredTrusted(z_.data, oracle)).toBeNull();
          expect(dump(fast)).toEqual(dump(oracle));
          accepted++;
        } else if (!z_.success) {
          rejected++;
        } else {
          // zod accepts what the compiled checks could not prove: only a value no column can hold (the writer
          // then stores zod's output, or fails when that does not fit either)
          fallback++;
          expect(table!.shredTrusted(z_.data, newBuffers(table!.leaves)), `${name} row ${n}: fast path rejected a storable valid row`).not.toBeNull();
        }
      }
      expect(accepted).toBeGreaterThan(300);
      expect(rejected).toBeGreaterThan(200);
      expect(fallback).toBeLessThan(100);
    });
  }

  it('scalar records: the remembered last record never leaks into a different one', () => {
    const S = z.object({ n: z.record(z.string(), z.number()), s: z.record(z.string(), z.string()).optional(), b: z.record(z.string(), z.boolean()).default({}) });
    const table = compileTable(S)!;
    const seq: unknown[] = [
      { n: { a: 1, b: 2 } }, { n: { a: 1, b: 2 } }, { n: { a: 1, b: 3 } }, { n: { b: 3, a: 1 } }, { n: { a: 1 } }, { n: { a: 1, b: 3 } },
      { n: {} }, { n: {} }, { n: { x: -0 } }, { n: { x: 0 } }, { n: JSON.parse('{"__proto__": 5, "a": 1}') }, { n: { a: 1 } },
      { n: { 2: 1, 1: 2 } }, { n: { '1': 2, '2': 1 } }, { n: { 'q"\\é\u0001': 1 } }, { n: { a: 1 }, s: { a: 'x' } }, { n: { a: 1 }, s: { a: 'y' }, b: { t: true } },
      { n: { a: 1 }, s: { a: 'y' }, b: { t: false } }, { n: { a: 1 }, s: { a: '日本' } }, { n: { a: 1 }, s: { a: '\ud800' } },
    ];
    const fast = newBuffers(table.leaves), oracle = newBuffers(table.leaves);
    expect(table.shredRows(seq, 0, seq.length, fast, Infinity)).toBe(-1);
    for (const row of seq) expect(table.shredTrusted(S.parse(row), oracle)).toBeNull();
    expect(dump(fast)).toEqual(dump(oracle));
    // a row whose entries match the remembered ones except one bad value is still rejected
    const bad = [{ n: { a: 1, b: 3 } }, { n: { a: 1, b: 'x' } }, { n: { a: 1, b: NaN } }];
    expect(table.shredRows(bad, 0, 3, newBuffers(table.leaves), Infinity)).toBe(1);
    expect(table.shredRows(bad, 2, 3, newBuffers(table.leaves), Infinity)).toBe(2);
  });

  it('falls back to zod for schemas it does not model', () => {
    expect(compileTable(z.object({ a: z.string() }).refine((o) => o.a !== 'x'))).toBeNull();
    expect(compileTable(z.object({ a: z.string().transform((s) => s.length) }))).toBeNull();
    expect(compileTable(z.object({ a: z.bigint() }))).toBeNull();
    expect(compileTable(z.object({ a: z.array(z.string()).refine((x) => x.length < 3) }))).toBeNull();
    for (const s of [Trajectory, Task, Rollout, EvalRollout, Verdict, EvalRow, Episode]) expect(compileTable(s)).not.toBeNull();
  });
});

describe('table writer: columnar path vs NDJSON → DuckDB path', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'af-fast-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function writeBoth(schema: z.ZodObject, stream: unknown[][], batches: [string, unknown[]][] = []) {
    const out: Record<string, { file: string; rows: number }> = {};
    for (const format of ['auto', 'ndjson'] as const) {
      const stage = join(dir, format, 'stage');
      rmSync(join(dir, format), { recursive: true, force: true });
      mkdirp(stage);
      const w = new TableWriter(schema, 'n', stage, join(dir, format, 'ck'), { format });
      for (const [id, rows] of batches) await w.writeBatch(id, rows as never[]);
      for (const rows of stream) await w.write(rows as never[]);
      out[format] = { file: join(stage, 'data.parquet'), rows: await w.finish() };
      expect(readdirSync(stage)).toEqual(['data.parquet']);
    }
    return out;
  }

  async function sql(file: string, q: string) {
    const inst = await DuckDBInstance.create(':memory:');
    const c = await inst.connect();
    try { return (await c.runAndReadAll(q.replaceAll('{t}', `read_parquet(${sqlString(file)})`))).getRowObjectsJson(); } finally { c.closeSync(); inst.closeSync(); }
  }

  async function expectSameTable(schema: z.ZodObject, out: Awaited<ReturnType<typeof writeBoth>>) {
    const [a, b] = [out.auto, out.ndjson];
    expect(a.rows).toBe(b.rows);
    expect(await sql(a.file, 'DESCRIBE SELECT * FROM {t}')).toEqual(await sql(b.file, 'DESCRIBE SELECT * FROM {t}'));
    expect(await sql(a.file, 'SELECT * FROM {t}')).toEqual(await sql(b.file, 'SELECT * FROM {t}'));
    if (a.rows) expect(await sql(a.file, `SELECT compression FROM parquet_metadata(${sqlString(a.file)}) GROUP BY ALL`)).toEqual([{ compression: 'ZSTD' }]);
    const ra = await new TableReader('n', 'k', [a.file], schema).all();
    const rb = await new TableReader('n', 'k', [b.file], schema).all();
    expect(ra).toEqual(rb);
    return ra;
  }

  for (const [name, schema] of Object.entries(SCHEMAS)) {
    it(`${name}: random valid rows make the same table`, async () => {
      const r = mulberry32(name.length * 104729);
      const rows: unknown[] = [];
      while (rows.length < 300) { const row = gen(schema, r); if (schema.safeParse(row).success) rows.push(row); }
      const back = await expectSameTable(schema, await writeBoth(schema, [rows.slice(0, 100), rows.slice(100, 250)], [['2', rows.slice(250, 270)], ['10', rows.slice(270)]]));
      expect(back).toHaveLength(300);
    });
  }

  it('trajectories: read back equal to what zod parses, in order (stream, then batches numeric-aware)', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => makeTrajectory(i));
    const out = await writeBoth(Trajectory, [rows.slice(0, 3000)], [['b10', rows.slice(4000)], ['b9', rows.slice(3000, 4000)]]);
    const back = await expectSameTable(Trajectory, out);
    expect(back).toEqual(rows.map((x) => Trajectory.parse(x)));
  });

  it('strings of every length and script, nulls and empty lists', async () => {
    const S = z.object({ s: z.string(), o: z.string().nullable(), l: z.array(z.string()), j: z.record(z.string(), z.unknown()) });
    const rows: z.input<typeof S>[] = [0, 1, 5, 300, 70_000, 3, 1 << 20, 0, 17].map((n, i) => ({ s: 'é'.repeat(n) + i, o: i % 2 ? null : '日本', l: i % 3 ? [] : ['🙂', ''], j: { k: 'ü'.repeat(n % 50), n: i } }));
    for (let k = 0; k < 3000; k++) rows.push({ s: 'x'.repeat((k * 7919) % 2000) + '🙂', o: k % 5 ? 'same' : null, l: [String(k)], j: {} });
    const back = await expectSameTable(S, await writeBoth(S, [rows.slice(0, 5), rows.slice(5)]));
    expect(back).toEqual(rows);
  });

  it('an empty table has the same columns', async () => {
    await expectSameTable(Trajectory, await writeBoth(Trajectory, []));
  });

  it('large writes span many pages and row groups', async () => {
    const rows = Array.from({ length: 130_000 }, (_, i) => makeTrajectory(i));
    const w = new TableWriter(Trajectory, 'n', dir, join(dir, 'ck'));
    await w.write(rows);
    expect(await w.finish()).toBe(130_000);
    const file = join(dir, 'data.parquet');
    expect(await sql(file, 'SELECT count(*)::INT AS n, count(DISTINCT id)::INT AS d, min(seed) AS lo, max(seed) AS hi FROM {t}')).toEqual([{ n: 130_000, d: 130_000, lo: 0, hi: 129_999 }]);
    expect((await sql(file, `SELECT DISTINCT row_group_id FROM parquet_metadata(${sqlString(file)})`)).length).toBe(2);
    expect(await sql(file, "SELECT id, messages[2].content AS c FROM {t} WHERE seed IN (0, 129999) ORDER BY seed")).toEqual(
      [0, 129_999].map((i) => ({ id: `traj-${i}`, c: makeTrajectory(i).messages[1].content })));
  });
});

describe('table writer errors', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'af-fast-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function errorOf(format: 'auto' | 'ndjson', calls: unknown[][], batch?: string) {
    const sub = join(dir, format);
    const w = new TableWriter(Trajectory, 'node', sub, join(sub, 'ck'), { format });
    try {
      for (const rows of calls) await (batch ? w.writeBatch(batch, rows as never[]) : w.write(rows as never[]));
    } catch (e) { return e as RowValidationError; }
    return null;
  }

  it('reports the row and zod path exactly as the NDJSON path does', async () => {
    const good = Array.from({ length: 10 }, (_, i) => makeTrajectory(i));
    const cases: [unknown[][], string?][] = [
      [[good.slice(0, 3), [...good.slice(3, 5), { ...good[5], seed: 1.5 }]]],
      [[[{ ...good[0], messages: [{ role: 'nobody', content: 'x' }] }]]],
      [[[...good.slice(0, 2), { ...good[2], messages: [{ role: 'assistant', content: '', tool_calls: [{ id: 'c', name: 'f', arguments: 'nope', raw: '' }] }] }]], 'b1'],
      [[[{ ...good[0], reward_components: { a: 'x' } }]]],
      [[[{ ...good[0], tools: [{ function: { name: '' } }] }]]],
    ];
    for (const [calls, batch] of cases) {
      mkdirSafe(dir);
      const a = await errorOf('auto', calls, batch);
      const b = await errorOf('ndjson', calls, batch);
      expect(a).toBeInstanceOf(RowValidationError);
      expect(a!.message).toBe(b!.message);
      expect([a!.rowIndex, a!.path]).toEqual([b!.rowIndex, b!.path]);
    }
  });

  it('a failed write leaves nothing of its rows, even after it filled pages', async () => {
    const w = new TableWriter(Trajectory, 'node', dir, join(dir, 'ck'));
    await w.write(Array.from({ length: 7 }, (_, i) => makeTrajectory(i)));
    const big = Array.from({ length: 20_000 }, (_, i) => makeTrajectory(100 + i));
    big.push({ ...makeTrajectory(1), turns: 'x' } as never);
    await expect(w.write(big)).rejects.toThrow(/output row 20007 fails the schema at turns/);
    await expect(w.write([{ ...makeTrajectory(1), id: 5 } as never])).rejects.toThrow(/fails the schema at id/);
    await w.write(Array.from({ length: 3 }, (_, i) => makeTrajectory(50 + i)));
    expect(await w.finish()).toBe(10);
    const back = await new TableReader<Traj>('n', 'k', [join(dir, 'data.parquet')], Trajectory).all();
    expect(back.map((t) => t.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 50, 51, 52].map((i) => `traj-${i}`));
  });

  it('a value valid for zod but too large for its INTEGER column is an error, not a wrapped number', async () => {
    const w = new TableWriter(Trajectory, 'node', dir, join(dir, 'ck'));
    await expect(w.write([{ ...makeTrajectory(0), seed: 2 ** 40 }])).rejects.toThrow(/value at seed does not fit its column type/);
  });

  it('batches are durable: a new writer resumes them and keeps order', async () => {
    const ck = join(dir, 'ck');
    const w1 = new TableWriter(Trajectory, 'node', join(dir, 's1'), ck);
    await w1.writeBatch('2', [makeTrajectory(2)]);
    await w1.writeBatch('10', [makeTrajectory(10)]);
    await expect(w1.writeBatch('2', [makeTrajectory(2)])).rejects.toThrow(/already written/);
    // killed here: the next attempt resumes
    mkdirSafe(join(dir, 's2'));
    const w2 = new TableWriter(Trajectory, 'node', join(dir, 's2'), ck);
    expect([...w2.resumedBatches].sort()).toEqual(['10', '2']);
    expect(w2.hasBatch('10')).toBe(true);
    await w2.writeBatch('1', [makeTrajectory(1)]);
    await w2.write([makeTrajectory(0)]);
    expect(await w2.finish()).toBe(4);
    const back = await new TableReader<Traj>('n', 'k', [join(dir, 's2', 'data.parquet')], Trajectory).all();
    expect(back.map((t) => t.id)).toEqual(['traj-0', 'traj-1', 'traj-2', 'traj-10']);
  });
});

function mkdirp(p: string) { mkdirSync(p, { recursive: true }); }
function mkdirSafe(p: string) { rmSync(p, { recursive: true, force: true }); mkdirp(p); }
