import { z } from 'zod';
import { util } from 'zod/v4/core';
import { codecFor, sqlIdent } from './codec.ts';
import type { LeafInfo, LeafKind, SchemaNode } from './parquet.ts';

/*
 * Compiles a table's zod schema once into two plain JS functions (generated source, so V8 sees straight-line code):
 *
 *  shredRows   validates rows exactly as the schema's safeParse would accept them and writes them straight into
 *              per-leaf column buffers (Dremel definition/repetition levels + values), with zod's output semantics:
 *              defaults filled, unknown keys stripped. It never builds the parsed object. On the first row it cannot
 *              prove valid it stops and reports the row; the caller then asks zod itself (for the exact error, or —
 *              should zod accept it after all — shreds zod's output with `shredTrusted`).
 *  shredTrusted  stores an already-parsed value the way the NDJSON path stored it (codec.encode + read_json): nulls
 *              and missing keys become NULL, nothing is validated. Used for default values and for zod's output.
 *
 * Record/unknown/union/... columns become JSON text: records of string keys to unknown or to plain scalars are
 * checked inline, any other shape by zod on just that value. Anything the compiler does not model (refine on an
 * object or array, transform/pipe, catch, prefault, coerce, bigint, date, non-string enums, ...) makes compileTable
 * return null and the writer keeps the NDJSON → DuckDB path for the whole schema.
 */

export class Unsupported extends Error {}

type Def = { type: string; [k: string]: unknown };
interface ZodInternals { def: Def; optin?: string; optout?: string; traits: Set<string>; values?: Set<unknown>; check?: (p: unknown) => unknown }
type Schema = { _zod: ZodInternals; safeParse(v: unknown): { success: boolean; data?: unknown } };
const zi = (s: unknown) => (s as Schema)._zod;
const defOf = (s: unknown) => zi(s).def;

/** Growable typed array with an Array-like `push`, so generated code reads the same for levels and values. */
export class Growable<A extends Uint8Array | Int32Array | Float64Array> {
  n = 0;
  constructor(public a: A) {}
  push(x: number) {
    if (this.n === this.a.length) this.grow();
    this.a[this.n++] = x;
  }
  /** Appends a whole array (same element type) with one copy. */
  pushAll(xs: A) {
    while (this.n + xs.length > this.a.length) this.grow();
    this.a.set(xs, this.n);
    this.n += xs.length;
  }
  private grow() {
    const b = new (this.a.constructor as new (n: number) => A)(this.a.length * 2);
    b.set(this.a);
    this.a = b;
  }
  view(): A { return this.a.subarray(0, this.n) as A; }
}
const u8 = () => new Growable(new Uint8Array(1024));

/** String values of a column (JSON as text), in an array presized from the previous page. */
export class Strings {
  a: string[];
  n = 0;
  constructor(capacity = 0) { this.a = capacity > 0 ? new Array(capacity) : []; }
  push(x: string) { this.a[this.n++] = x; }
}

export interface ColumnBuffers {
  /** Definition levels of every slot. */
  d: Growable<Uint8Array>[];
  /** Repetition levels of every slot (leaves under a list only). */
  r: (Growable<Uint8Array> | null)[];
  /** Values of the defined slots: strings (JSON as text), numbers and booleans (typed arrays). */
  v: (Strings | Growable<Int32Array> | Growable<Float64Array> | Growable<Uint8Array>)[];
  /** Weight of what is buffered: UTF-16 units of string values plus 4 per list element (page size estimate). */
  chars: number;
}

export interface CompiledTable {
  roots: SchemaNode[];
  leaves: LeafInfo[];
  /**
   * Shreds rows[start, end): -1 when all were stored; r >= 0 when row r could not be proven valid (its slots may be
   * partly written: roll back); r <= -2 when b.chars reached `limit` and rows before -r - 2 were stored.
   */
  shredRows(rows: readonly unknown[], start: number, end: number, b: ColumnBuffers, limit: number): number;
  /** Stores an already-parsed row; returns null, or the path of a value no column can hold (partly written: roll back). */
  shredTrusted(row: unknown, b: ColumnBuffers): string | null;
  source: string;
}

export function newBuffers(leaves: LeafInfo[]): ColumnBuffers {
  const b: ColumnBuffers = {
    d: leaves.map(u8),
    r: [],
    v: leaves.map((l) => (l.kind === 'string' || l.kind === 'json' ? new Strings() : l.kind === 'int32' ? new Growable(new Int32Array(1024)) : l.kind === 'double' ? new Growable(new Float64Array(1024)) : u8())),
    chars: 0,
  };
  leaves.forEach((l, i) => b.r.push(l.maxRep === 0 ? null : l.repOwner === i ? u8() : b.r[l.repOwner]));
  return b;
}

/** Slot and value counts of every column: a rollback point. */
export function mark(b: ColumnBuffers): number[] {
  const m: number[] = [b.chars];
  for (let i = 0; i < b.d.length; i++) {
    const v = b.v[i];
    m.push(b.d[i].n, v.n);
  }
  return m;
}

export function rollback(b: ColumnBuffers, m: number[]) {
  b.chars = m[0];
  for (let i = 0; i < b.d.length; i++) {
    b.d[i].n = m[1 + 2 * i];
    const r = b.r[i];
    if (r) r.n = m[1 + 2 * i];
    const v = b.v[i];
    v.n = m[2 + 2 * i];
  }
}

interface Node {
  kind: 'leaf' | 'struct' | 'list';
  /** Definition level when this node's value is present (its parent's null level + 1). */
  D: number;
  /** Repetition level of the innermost list around (or of) this node. */
  R: number;
  name: string;
  path: string[];
  leaf?: number;
  leafKind?: LeafKind;
  fields?: { key: string; schema: unknown; node: Node }[];
  element?: Node;
  elementSchema?: unknown;
  leaves: number[];
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'readonly']);
const JSON_TYPES_DIRECT = new Set(['record', 'unknown', 'any', 'union', 'tuple', 'lazy', 'map', 'set', 'intersection', 'null', 'undefined', 'void', 'never', 'nan', 'symbol', 'function', 'promise', 'file', 'template_literal', 'custom', 'success', 'xor']);

const hasChecks = (s: unknown) => (defOf(s).checks as unknown[] | undefined)?.length || zi(s).traits.has('$ZodCheck');
const checksOf = (s: unknown): { _zod: ZodInternals }[] => {
  const list = [...((defOf(s).checks as { _zod: ZodInternals }[] | undefined) ?? [])];
  if (zi(s).traits.has('$ZodCheck')) list.unshift(s as { _zod: ZodInternals });
  return list;
};

/** zod's default `when` of length checks (only checks with it are inlined). */
const DEFAULT_WHEN_LENGTH = checksOf(z.string().min(1))[0]._zod.def.when;

function stringLike(s: unknown): boolean {
  const d = defOf(s);
  if (d.type === 'enum') {
    const vals = zi(s).values;
    if (!vals || ![...vals].every((v) => typeof v === 'string')) throw new Unsupported('enum with non-string values');
    return true;
  }
  if (d.type === 'literal') return (d.values as unknown[]).every((v) => typeof v === 'string');
  return d.type === 'string';
}

function numberKind(d: Def): LeafKind {
  const checks = (d.checks as { _zod: { def: { format?: string } } }[] | undefined) ?? [];
  return checks.some((c) => c._zod.def.format === 'safeint' || c._zod.def.format === 'int32') ? 'int32' : 'double';
}

/** The column structure (Dremel tree) of a schema, following codec.ts: wrappers are transparent. */
function structure(s: unknown, name: string, path: string[], D: number, R: number, leaves: LeafInfo[], group = { owner: -1 }): Node {
  const d = defOf(s);
  if (WRAPPERS.has(d.type)) return structure(d.innerType, name, path, D, R, leaves, group);
  const leaf = (k: LeafKind): Node => {
    if (R > 0 && group.owner < 0) group.owner = leaves.length;
    leaves.push({ path, kind: k, maxDef: D, maxRep: R, repOwner: R > 0 ? group.owner : -1 });
    return { kind: 'leaf', D, R, name, path, leaf: leaves.length - 1, leafKind: k, leaves: [leaves.length - 1] };
  };
  switch (d.type) {
    case 'string': return leaf('string');
    case 'boolean': return leaf('bool');
    case 'number': return leaf(numberKind(d));
    case 'enum': case 'literal': return leaf(stringLike(s) ? 'string' : 'json');
    case 'object': {
      const fields = Object.entries(d.shape as Record<string, unknown>).map(([key, fs]) => ({ key, schema: fs, node: structure(fs, key, [...path, key], D + 1, R, leaves, group) }));
      return { kind: 'struct', D, R, name, path, fields, leaves: fields.flatMap((f) => f.node.leaves) };
    }
    case 'array': {
      const element = structure(d.element, 'element', [...path, 'list', 'element'], D + 2, R + 1, leaves, { owner: -1 });
      return { kind: 'list', D, R: R + 1, name, path, element, elementSchema: d.element, leaves: element.leaves };
    }
    case 'bigint': case 'date': case 'pipe': case 'transform': case 'prefault': case 'catch': case 'nonoptional':
      throw new Unsupported(d.type);
    default:
      return leaf('json');
  }
}

function sqlOf(n: Node): string {
  if (n.kind === 'struct') return `STRUCT(${n.fields!.map((f) => `${sqlIdent(f.key)} ${sqlOf(f.node)}`).join(', ')})`;
  if (n.kind === 'list') return `${sqlOf(n.element!)}[]`;
  return { string: 'VARCHAR', json: 'JSON', int32: 'INTEGER', double: 'DOUBLE', bool: 'BOOLEAN' }[n.leafKind!];
}

function parquetNode(n: Node): SchemaNode {
  if (n.kind === 'struct') return { name: n.name, kind: 'struct', children: n.fields!.map((f) => parquetNode(f.node)) };
  if (n.kind === 'list') return { name: n.name, kind: 'list', element: parquetNode(n.element!) };
  return { name: n.name, kind: 'leaf', leaf: n.leafKind };
}

// Helpers the generated code calls (exactly zod's semantics).
const cpl = util.codePointLength as (s: string) => number;
const FAILED = Symbol('failed');
const helpers = {
  isPlainObject: util.isPlainObject as (v: unknown) => boolean,
  minLen: (s: string, n: number) => { const u = s.length; return (u >= n && u < n * 2 ? cpl(s) : u) >= n; },
  maxLen: (s: string, n: number) => { const u = s.length; return (u > n ? cpl(s) : u) <= n; },
  lenEq: (s: string, n: number) => { const u = s.length; return (u >= n && u <= n * 2 ? cpl(s) : u) === n; },
  /** Runs a schema's checks the way zod's runChecks does on a valid payload; FAILED on the first issue. */
  runChecks: (checks: { _zod: ZodInternals }[], value: unknown): unknown => {
    const payload = { value, issues: [] as unknown[] };
    for (const ch of checks) {
      const when = ch._zod.def.when as ((p: unknown) => boolean) | undefined;
      if (when && !when(payload)) continue;
      const r = ch._zod.check!(payload);
      if (r instanceof Promise || payload.issues.length) return FAILED;
    }
    return payload.value;
  },
  FAILED,
  hasOwn: (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k),
  /** Enumerable own symbol keys: zod's string-keyed record rejects them. */
  enumSym: (o: object) => {
    const syms = Object.getOwnPropertySymbols(o);
    return syms.length > 0 && syms.some((s) => Object.prototype.propertyIsEnumerable.call(o, s));
  },
  /** zod's record output never carries an own `__proto__` key. */
  protoFree: (o: Record<string, unknown>) => {
    if (!Object.prototype.hasOwnProperty.call(o, '__proto__')) return o;
    const r: Record<string, unknown> = {};
    for (const k of Object.keys(o)) if (k !== '__proto__') r[k] = o[k];
    return r;
  },
};

/**
 * JSON text of plain records whose values are all strings, all numbers or all booleans, checked on the way. The last
 * record's entries and text are kept: such maps (reward components, counts) often repeat row after row, and
 * JSON.stringify would be most of their cost.
 */
export class ScalarRecord {
  private keys: string[] = [];
  private vals: unknown[] = [];
  private text: string | null = null;
  constructor(private type: 'string' | 'number' | 'boolean') {}

  /** JSON.stringify of the record without an own __proto__ key, or FAILED when a value is not of the type. */
  json(o: Record<string, unknown>): string | undefined | typeof FAILED {
    const { keys, vals, type } = this;
    let n = 0, same = this.text !== null;
    for (const k in o) {
      if (k === '__proto__' || !helpers.hasOwn(o, k)) continue;
      const e = o[k];
      if (typeof e !== type || (type === 'number' && !Number.isFinite(e))) return FAILED;
      if (same && (keys[n] !== k || vals[n] !== e)) same = false;
      n++;
    }
    // A toJSON (own or inherited) makes the text depend on more than the entries.
    if (o.toJSON !== undefined) return JSON.stringify(helpers.protoFree(o));
    if (same && n === keys.length) return this.text!;
    keys.length = vals.length = 0;
    for (const k in o) if (k !== '__proto__' && helpers.hasOwn(o, k)) { keys.push(k); vals.push(o[k]); }
    return (this.text = JSON.stringify(helpers.protoFree(o)));
  }
}

class Gen {
  consts: unknown[] = [helpers];
  /** Element shredders of lists of structs: small functions V8 optimizes (and deopts) one by one. */
  fns: string[] = [];
  private n = 0;
  constructor(readonly leaves: LeafInfo[]) {}
  k(v: unknown): string { this.consts.push(v); return `K[${this.consts.length - 1}]`; }
  t(prefix = "t"): string { return `_${prefix}${this.n++}`; }

  nulls(n: Node, def: number, r: string): string {
    return n.leaves.map((i) => `d${i}.push(${def});${this.leaves[i].repOwner === i ? ` r${i}.push(${r});` : ''}`).join(' ');
  }
  value(n: Node, x: string, r: string): string {
    const i = n.leaf!;
    const ch = n.leafKind === 'string' || n.leafKind === 'json' ? ` ch += ${x}.length;` : '';
    return `d${i}.push(${n.D});${this.leaves[i].repOwner === i ? ` r${i}.push(${r});` : ''} v${i}.push(${x});${ch}`;
  }

  /** Validating shred of variable `v` (schema s, column node n); `fail` is the statement run when v is not provably valid. */
  v(s: unknown, n: Node, v: string, r: string, fail: string): string {
    const d = defOf(s);
    const z_ = zi(s);
    if (WRAPPERS.has(d.type) && hasChecks(s)) throw new Unsupported(`checks on ${d.type}`);
    switch (d.type) {
      case 'optional': {
        if (z_.traits.has('$ZodExactOptional')) throw new Unsupported('exactOptional');
        const inner = d.innerType;
        if (zi(inner).optin === 'defaulted') return this.v(inner, n, v, r, fail);
        return `if (${v} === undefined) { ${this.nulls(n, n.D - 1, r)} } else { ${this.v(inner, n, v, r, fail)} }`;
      }
      case 'nullable':
        return `if (${v} === null) { ${this.nulls(n, n.D - 1, r)} } else { ${this.v(d.innerType, n, v, r, fail)} }`;
      case 'default': {
        const t = this.t('dv');
        // null, [] and {} defaults are stored from a constant (the getter would allocate a copy per row).
        const a = (d as { defaultValue?: unknown }).defaultValue, b = (d as { defaultValue?: unknown }).defaultValue;
        const dv = trivial(a) && trivial(b) && JSON.stringify(a) === JSON.stringify(b) ? this.k(a) : `${this.k(d)}.defaultValue`;
        return `if (${v} === undefined) { const ${t} = ${dv}; ${this.trusted(n, t, r, fail)} } else { ${this.v(d.innerType, n, v, r, fail)} }`;
      }
      case 'readonly': return this.v(d.innerType, n, v, r, fail);
    }
    if (n.kind === 'struct') return this.object(s, n, v, r, fail);
    if (n.kind === 'list') return this.array(s, n, v, r, fail);
    if (n.leafKind === 'json') return this.json(s, n, v, r, fail);
    if (d.coerce) throw new Unsupported('coerce');
    switch (d.type) {
      case 'string': {
        const x = this.t('s');
        return `if (typeof ${v} !== 'string') ${fail} let ${x} = ${v}; ${this.checks(s, x, fail, 'string')} ${this.value(n, x, r)}`;
      }
      case 'number': {
        const x = this.t('x');
        const int = n.leafKind === 'int32' ? ` if ((${x} | 0) !== ${x}) ${fail}` : '';
        return `if (typeof ${v} !== 'number' || !Number.isFinite(${v})) ${fail} let ${x} = ${v}; ${this.checks(s, x, fail, 'number')}${int} ${this.value(n, x, r)}`;
      }
      case 'boolean': {
        if (hasChecks(s)) {
          const x = this.t('b');
          return `if (typeof ${v} !== 'boolean') ${fail} let ${x} = ${v}; ${this.checks(s, x, fail, 'other')} ${this.value(n, x, r)}`;
        }
        return `if (typeof ${v} !== 'boolean') ${fail} ${this.value(n, v, r)}`;
      }
      case 'enum': case 'literal': {
        const vals = [...(z_.values ?? new Set((d.values as unknown[]) ?? []))] as string[];
        const test = vals.length <= 12 ? (vals.length ? vals.map((x) => `${v} === ${JSON.stringify(x)}`).join(' || ') : 'false') : `${this.k(new Set(vals))}.has(${v})`;
        if (hasChecks(s)) {
          const x = this.t('e');
          return `if (!(${test})) ${fail} let ${x} = ${v}; ${this.checks(s, x, fail, 'other')} ${this.value(n, x, r)}`;
        }
        return `if (!(${test})) ${fail} ${this.value(n, v, r)}`;
      }
    }
    throw new Unsupported(d.type);
  }

  /** Inline code for a leaf's checks on variable x (may reassign x for overwrite checks). */
  checks(s: unknown, x: string, fail: string, kind: 'string' | 'number' | 'other'): string {
    const list = checksOf(s);
    if (!list.length) return '';
    const inline: string[] = [];
    for (const ch of list) {
      const cd = ch._zod.def as Def & { when?: unknown; check?: string; format?: string; value?: unknown; inclusive?: boolean; minimum?: number; maximum?: number; length?: number };
      if (kind === 'number' && !cd.when && cd.check === 'number_format') {
        const f = cd.format ?? 'float64';
        if (f === 'safeint') inline.push(`if (!Number.isSafeInteger(${x})) ${fail}`);
        else if (f === 'int32') inline.push(`if ((${x} | 0) !== ${x}) ${fail}`);
        else if (f === 'uint32') inline.push(`if (!Number.isInteger(${x}) || ${x} < 0 || ${x} > 4294967295) ${fail}`);
        else if (f === 'float32') inline.push(`if (${x} < -3.4028234663852886e38 || ${x} > 3.4028234663852886e38) ${fail}`);
        else if (f !== 'float64') return this.genericChecks(list, x, fail);
        continue;
      }
      if (kind === 'number' && !cd.when && (cd.check === 'greater_than' || cd.check === 'less_than') && typeof cd.value === 'number') {
        const op = cd.check === 'greater_than' ? (cd.inclusive ? '>=' : '>') : (cd.inclusive ? '<=' : '<');
        inline.push(`if (!(${x} ${op} ${cd.value})) ${fail}`);
        continue;
      }
      if (kind === 'string' && cd.when === DEFAULT_WHEN_LENGTH && (cd.check === 'min_length' || cd.check === 'max_length' || cd.check === 'length_equals')) {
        const H = 'K[0]';
        if (cd.check === 'min_length') inline.push(`if (!${H}.minLen(${x}, ${cd.minimum})) ${fail}`);
        else if (cd.check === 'max_length') inline.push(`if (!${H}.maxLen(${x}, ${cd.maximum})) ${fail}`);
        else inline.push(`if (!${H}.lenEq(${x}, ${cd.length})) ${fail}`);
        continue;
      }
      return this.genericChecks(list, x, fail);
    }
    return inline.join(' ');
  }

  genericChecks(list: unknown[], x: string, fail: string): string {
    return `${x} = K[0].runChecks(${this.k(list)}, ${x}); if (${x} === K[0].FAILED) ${fail}`;
  }

  object(s: unknown, n: Node, v: string, r: string, fail: string): string {
    const d = defOf(s);
    if (d.type !== 'object') throw new Unsupported(d.type);
    if (hasChecks(s)) throw new Unsupported('checks on object');
    const shape = d.shape as Record<string, unknown>;
    if (Object.getOwnPropertySymbols(shape).length || '__proto__' in shape && Object.prototype.hasOwnProperty.call(shape, '__proto__')) throw new Unsupported('odd object keys');
    let code = `if (typeof ${v} !== 'object' || ${v} === null || Array.isArray(${v})) ${fail}`;
    const catchall = d.catchall as unknown;
    if (catchall) {
      const ct = defOf(catchall).type;
      if (ct === 'never') {
        code += ` for (const k in ${v}) { if (!${this.k(new Set(Object.keys(shape)))}.has(k)) ${fail} }`;
      } else if (ct !== 'unknown' && ct !== 'any') throw new Unsupported(`catchall ${ct}`);
    }
    for (const f of n.fields!) {
      const fv = this.t('f');
      code += ` const ${fv} = ${v}[${JSON.stringify(f.key)}];`;
      if (zi(f.schema).optin === undefined && mayAcceptUndefined(f.schema)) code += ` if (${fv} === undefined && !(${JSON.stringify(f.key)} in ${v})) ${fail}`;
      code += ` ${this.v(f.schema, f.node, fv, r, fail)}`;
    }
    return code;
  }

  array(s: unknown, n: Node, v: string, r: string, fail: string): string {
    const d = defOf(s);
    if (d.type !== 'array') throw new Unsupported(d.type);
    let code = `if (!Array.isArray(${v})) ${fail}`;
    for (const ch of checksOf(s)) {
      const cd = ch._zod.def as Def & { when?: unknown; check?: string; minimum?: number; maximum?: number; length?: number };
      if (cd.when !== DEFAULT_WHEN_LENGTH) throw new Unsupported('array check');
      if (cd.check === 'min_length') code += ` if (${v}.length < ${cd.minimum}) ${fail}`;
      else if (cd.check === 'max_length') code += ` if (${v}.length > ${cd.maximum}) ${fail}`;
      else if (cd.check === 'length_equals') code += ` if (${v}.length !== ${cd.length}) ${fail}`;
      else throw new Unsupported('array check');
    }
    const len = this.t('n'), i = this.t('i'), e = this.t('e'), rr = this.t('r');
    let el: string;
    if (n.element!.kind === 'leaf') el = this.v(n.elementSchema, n.element!, e, rr, fail);
    else {
      const fn = this.t('el');
      this.fns.push(`function ${fn}(e, rr) { ${this.v(n.elementSchema, n.element!, 'e', 'rr', 'return false;')} return true; }`);
      el = `if (!${fn}(${e}, ${rr})) ${fail}`;
    }
    code += ` const ${len} = ${v}.length; ch += ${len} * 4; if (${len} === 0) { ${this.nulls(n.element!, n.D, r)} } else for (let ${i} = 0; ${i} < ${len}; ${i}++) { const ${rr} = ${i} === 0 ? ${r} : ${n.R}; const ${e} = ${v}[${i}]; ${el} }`;
    return code;
  }

  json(s: unknown, n: Node, v: string, r: string, fail: string): string {
    const d = defOf(s);
    const x = this.t('j');
    let code: string;
    if (d.type === 'unknown' || d.type === 'any') {
      if (hasChecks(s)) code = `let ${x} = K[0].runChecks(${this.k(checksOf(s))}, ${v}); if (${x} === K[0].FAILED) ${fail}`;
      else code = `const ${x} = ${v};`;
    } else if (d.type === 'record' && fastRecord(s)) {
      const vt = unwrapSimple(d.valueType);
      code = `if (!K[0].isPlainObject(${v}) || K[0].enumSym(${v})) ${fail}`;
      if (vt === 'string' || vt === 'number' || vt === 'boolean') {
        const t = this.t('js');
        return `${code} const ${t} = ${this.k(new ScalarRecord(vt))}.json(${v}); if (${t} === K[0].FAILED) ${fail} ${this.jsonText(n, t, r)}`;
      }
      code += ` const ${x} = K[0].protoFree(${v});`;
    } else {
      const p = this.t('p');
      code = `const ${p} = ${this.k(s)}.safeParse(${v}); if (!${p}.success) ${fail} const ${x} = ${p}.data;`;
    }
    return `${code} ${this.jsonValue(n, x, r)}`;
  }

  jsonValue(n: Node, x: string, r: string): string {
    const t = this.t('js');
    return `const ${t} = ${x} === undefined || ${x} === null ? undefined : JSON.stringify(${x}); ${this.jsonText(n, t, r)}`;
  }

  /** Stores JSON text t (from JSON.stringify: undefined or 'null' is SQL NULL). */
  jsonText(n: Node, t: string, r: string): string {
    return `if (${t} === undefined || ${t} === 'null') { ${this.nulls(n, n.D - 1, r)} } else { ${this.value(n, t, r)} }`;
  }

  /**
   * Stores an already-parsed value by column structure only (codec.encode + read_json semantics). A value no column
   * can hold runs `fail` when given, else returns its path.
   */
  trusted(n: Node, v: string, r: string, fail?: string): string {
    const failT = fail ?? `return ${this.k(n.path.join('.') || '(row)')};`;
    const nul = this.nulls(n, n.D - 1, r);
    if (n.kind === 'struct') {
      let code = `if (${v} === null || ${v} === undefined) { ${nul} } else if (typeof ${v} !== 'object' || Array.isArray(${v})) { ${failT} } else {`;
      for (const f of n.fields!) {
        const fv = this.t('f');
        code += ` const ${fv} = ${v}[${JSON.stringify(f.key)}]; ${this.trusted(f.node, fv, r, fail)}`;
      }
      return `${code} }`;
    }
    if (n.kind === 'list') {
      const len = this.t('n'), i = this.t('i'), e = this.t('e'), rr = this.t('r');
      return `if (${v} === null || ${v} === undefined) { ${nul} } else if (!Array.isArray(${v})) { ${failT} } else { const ${len} = ${v}.length; ch += ${len} * 4; if (${len} === 0) { ${this.nulls(n.element!, n.D, r)} } else for (let ${i} = 0; ${i} < ${len}; ${i}++) { const ${rr} = ${i} === 0 ? ${r} : ${n.R}; const ${e} = ${v}[${i}]; ${this.trusted(n.element!, e, rr, fail)} } }`;
    }
    switch (n.leafKind) {
      case 'string': return `if (${v} === null || ${v} === undefined) { ${nul} } else if (typeof ${v} === 'string') { ${this.value(n, v, r)} } else { ${failT} }`;
      case 'json': return this.jsonValue(n, v, r);
      case 'bool': return `if (${v} === null || ${v} === undefined) { ${nul} } else if (typeof ${v} === 'boolean') { ${this.value(n, v, r)} } else { ${failT} }`;
      case 'int32': return `if (${v} === null || ${v} === undefined || (typeof ${v} === 'number' && !Number.isFinite(${v}))) { ${nul} } else if (typeof ${v} === 'number' && (${v} | 0) === ${v}) { ${this.value(n, `(${v} | 0)`, r)} } else { ${failT} }`;
      default: return `if (${v} === null || ${v} === undefined || (typeof ${v} === 'number' && !Number.isFinite(${v}))) { ${nul} } else if (typeof ${v} === 'number') { ${this.value(n, v, r)} } else { ${failT} }`;
    }
  }
}

const trivial = (x: unknown) => x === null || (Array.isArray(x) && x.length === 0 && Object.keys(x).length === 0)
  || (helpers.isPlainObject(x) && Reflect.ownKeys(x as object).length === 0);

/** Type name of a record value schema the inline record check handles, else null. */
function unwrapSimple(s: unknown): string | null {
  const d = defOf(s);
  if (hasChecks(s) || d.coerce) return null;
  if (d.type === 'unknown' || d.type === 'any' || d.type === 'string' || d.type === 'boolean') return d.type;
  if (d.type === 'number') return 'number';
  return null;
}

function fastRecord(s: unknown): boolean {
  const d = defOf(s);
  if (hasChecks(s) || d.mode !== undefined && d.mode !== 'strict' || d.partial) return false;
  const kd = defOf(d.keyType);
  if (kd.type !== 'string' || hasChecks(d.keyType) || kd.coerce || zi(d.keyType).values) return false;
  return unwrapSimple(d.valueType) !== null;
}

/** Whether a required field's schema could accept `undefined` (then an absent key must be told apart). */
function mayAcceptUndefined(s: unknown): boolean {
  const d = defOf(s);
  if (d.type === 'nullable' || d.type === 'readonly') return mayAcceptUndefined(d.innerType);
  if (['string', 'number', 'boolean', 'object', 'array', 'record', 'enum'].includes(d.type)) return false;
  if (d.type === 'literal') return (d.values as unknown[]).includes(undefined);
  return true;
}

/** Compiles a table schema, or returns null when it uses something the compiler does not model. */
export function compileTable(schema: z.ZodObject): CompiledTable | null {
  try {
    return compile(schema);
  } catch (e) {
    if (e instanceof Unsupported) return null;
    throw e;
  }
}

function compile(schema: z.ZodObject): CompiledTable {
  const leaves: LeafInfo[] = [];
  const root = structure(schema, '', [], 0, 0, leaves);
  if (root.kind !== 'struct') throw new Unsupported('not an object');
  // The column types must be exactly the codec's.
  for (const f of root.fields!) if (sqlOf(f.node) !== codecFor(f.schema as z.ZodType).sql) throw new Unsupported(`column ${f.key}`);
  const g = new Gen(leaves);
  // Defaults are stored unvalidated (as zod returns them): make sure each can be stored at all.
  checkDefaults(schema);
  const rowV = g.v(schema, root, 'row', '0', 'return false;');
  const rowT = g.trusted(root, 'row', '0');
  const source = `
${declare(leaves)}
${g.fns.join('\n')}
function rowV(row) { ${rowV} return true; }
function rowT(row) { ${rowT} return null; }
return {
  shredRows(rows, start, end, B, limit) {
    bind(B);
    ch = 0;
    const lim = limit - B.chars;
    for (let ri = start; ri < end; ri++) {
      if (!rowV(rows[ri])) { B.chars += ch; return ri; }
      if (ch >= lim) { B.chars += ch; return -(ri + 3); }
    }
    B.chars += ch;
    return -1;
  },
  shredTrusted(row, B) {
    bind(B);
    ch = 0;
    if (row === null || typeof row !== 'object') return '(row)';
    const bad = rowT(row);
    B.chars += ch;
    return bad;
  },
};`;
  const fns = new Function('K', source)(g.consts) as Pick<CompiledTable, 'shredRows' | 'shredTrusted'>;
  return { roots: root.fields!.map((f) => parquetNode(f.node)), leaves, shredRows: fns.shredRows, shredTrusted: fns.shredTrusted, source };
}

/** Column buffers as closure variables of the generated functions, bound per call. */
function declare(leaves: LeafInfo[]): string {
  const names = leaves.flatMap((l, i) => (l.repOwner === i ? [`d${i}`, `r${i}`, `v${i}`] : [`d${i}`, `v${i}`]));
  return `let ${names.join(', ')}; let ch = 0;
function bind(B) { ${leaves.map((l, i) => `d${i} = B.d[${i}];${l.repOwner === i ? ` r${i} = B.r[${i}];` : ''} v${i} = B.v[${i}];`).join(' ')} }`;
}

/** Throws Unsupported when a default value's shape could not be stored by shredTrusted (checked once, at compile). */
function checkDefaults(schema: unknown) {
  const seen = new Set<unknown>();
  const walk = (s: unknown) => {
    if (seen.has(s)) return;
    seen.add(s);
    const d = defOf(s);
    if (d.type === 'default') {
      const dv = (d as { defaultValue?: unknown }).defaultValue;
      const leaves: LeafInfo[] = [];
      const n = structure(d.innerType, 'x', ['x'], 1, 0, leaves);
      const g = new Gen(leaves);
      const src = `${declare(leaves)} return (dv, B) => { bind(B); ${g.trusted(n, 'dv', '0')} return null; };`;
      const bad = new Function('K', src)(g.consts)(dv, newBuffers(leaves));
      if (bad !== null) throw new Unsupported(`default at ${bad}`);
    }
    if (WRAPPERS.has(d.type)) walk(d.innerType);
    else if (d.type === 'object') for (const f of Object.values(d.shape as Record<string, unknown>)) walk(f);
    else if (d.type === 'array') walk(d.element);
  };
  walk(schema);
}
