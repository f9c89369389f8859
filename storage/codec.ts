import type { z } from 'zod';

/*
 * Storage types come from the zod schema, never from the rows: objects become STRUCTs, arrays LISTs, and only
 * shapes that truly vary (records, unknown, unions of objects) become JSON text. `encode` turns a validated
 * record into the JSON that DuckDB's read_json ingests for those columns; `decode` turns a row read back from
 * Parquet into what the schema's output type promises.
 */

export interface Codec {
  /** DuckDB column type, e.g. `STRUCT("role" VARCHAR, "tool_calls" STRUCT(...)[])`. */
  sql: string;
  /** True when encoding is the identity (JSON.stringify of the row is already what read_json wants). */
  simple: boolean;
  /** True when decoding is the identity (primitives and lists of primitives). */
  plain: boolean;
  encode(v: unknown): unknown;
  decode(v: unknown): unknown;
}

type Def = { type: string; [k: string]: unknown };
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;
const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
const id = (v: unknown) => v;

// read_json keeps a JSON column's nested value as JSON text, so encoding is the identity; decoding parses it.
const jsonCodec: Codec = {
  sql: 'JSON',
  simple: true,
  plain: false,
  encode: (v) => (v === undefined ? null : v),
  decode: (v) => (v === null || v === undefined ? null : typeof v === 'string' ? JSON.parse(v) : v),
};

function numberSql(def: Def): string {
  const checks = (def.checks as { _zod: { def: { format?: string } } }[] | undefined) ?? [];
  return checks.some((c) => c._zod.def.format === 'safeint' || c._zod.def.format === 'int32') ? 'INTEGER' : 'DOUBLE';
}

export function codecFor(schema: z.ZodType): Codec {
  const def = defOf(schema);
  switch (def.type) {
    case 'string': return { sql: 'VARCHAR', simple: true, plain: true, encode: id, decode: id };
    case 'boolean': return { sql: 'BOOLEAN', simple: true, plain: true, encode: id, decode: id };
    case 'number': return { sql: numberSql(def), simple: true, plain: true, encode: id, decode: id };
    case 'bigint': return { sql: 'BIGINT', simple: false, plain: false, encode: (v) => (v == null ? v : String(v)), decode: (v) => (v == null ? v : BigInt(v as string)) };
    case 'enum': return { sql: 'VARCHAR', simple: true, plain: true, encode: id, decode: id };
    case 'literal': {
      const vals = def.values as unknown[];
      return vals.every((x) => typeof x === 'string') ? { sql: 'VARCHAR', simple: true, plain: true, encode: id, decode: id } : jsonCodec;
    }
    case 'date': return { sql: 'TIMESTAMP', simple: false, plain: false, encode: (v) => (v as Date | null)?.toISOString() ?? null, decode: (v) => (v == null ? v : new Date(v as string)) };
    case 'optional': return optionalCodec(codecFor(def.innerType as z.ZodType), true);
    case 'nullable': return optionalCodec(codecFor(def.innerType as z.ZodType), false);
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
    case 'nonoptional':
      return codecFor(def.innerType as z.ZodType);
    case 'pipe': return codecFor(def.out as z.ZodType);
    case 'lazy': return jsonCodec;
    case 'array': return arrayCodec(codecFor(def.element as z.ZodType));
    case 'object': return objectCodec(def.shape as Record<string, z.ZodType>);
    default: return jsonCodec; // record, unknown, any, union, tuple, map: shape varies per row
  }
}

function optionalCodec(inner: Codec, dropNull: boolean): Codec {
  return {
    sql: inner.sql,
    simple: inner.simple,
    plain: inner.plain && !dropNull,
    encode: (v) => (v === undefined || v === null ? null : inner.encode(v)),
    decode: (v) => (v === null || v === undefined ? (dropNull ? undefined : null) : inner.decode(v)),
  };
}

function arrayCodec(el: Codec): Codec {
  return {
    sql: `${el.sql}[]`,
    simple: el.simple,
    plain: el.plain,
    encode: el.simple ? id : (v) => (v == null ? v : (v as unknown[]).map(el.encode)),
    decode: el.plain ? id : (v) => (v == null ? v : (v as unknown[]).map(el.decode)),
  };
}

function objectCodec(shape: Record<string, z.ZodType>): Codec {
  const fields = Object.entries(shape).map(([k, s]) => [k, codecFor(s)] as const);
  const simple = fields.every(([, c]) => c.simple);
  return {
    sql: `STRUCT(${fields.map(([k, c]) => `${quote(k)} ${c.sql}`).join(', ')})`,
    simple,
    plain: false,
    encode: simple ? id : (v) => {
      if (v == null) return v;
      const o = v as Record<string, unknown>;
      const r: Record<string, unknown> = {};
      for (const [k, c] of fields) r[k] = c.encode(o[k]);
      return r;
    },
    decode: (v) => {
      if (v == null) return v;
      const o = v as Record<string, unknown>;
      const r: Record<string, unknown> = {};
      for (const [k, c] of fields) {
        const d = c.decode(o[k]);
        if (d !== undefined) r[k] = d;
      }
      return r;
    },
  };
}

export interface TableCodec {
  columns: { name: string; sql: string }[];
  /** `columns={...}` argument for read_json, so DuckDB never guesses a type. */
  readJsonColumns: string;
  encodeRow(row: Record<string, unknown>): Record<string, unknown>;
  decodeRow(row: Record<string, unknown>): Record<string, unknown>;
}

export function tableCodec(schema: z.ZodObject): TableCodec {
  const obj = objectCodec(schema.shape as Record<string, z.ZodType>);
  const columns = Object.entries(schema.shape as Record<string, z.ZodType>).map(([name, s]) => ({ name, sql: codecFor(s).sql }));
  return {
    columns,
    readJsonColumns: `{${columns.map((c) => `${sqlString(c.name)}: ${sqlString(c.sql)}`).join(', ')}}`,
    encodeRow: obj.encode as TableCodec['encodeRow'],
    decodeRow: obj.decode as TableCodec['decodeRow'],
  };
}

export const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;
export const sqlIdent = quote;

/** Column-type signature used to check that an output table fits the input it feeds. */
export function schemaSignature(schema: z.ZodObject): Record<string, string> {
  return Object.fromEntries(tableCodec(schema).columns.map((c) => [c.name, c.sql]));
}
