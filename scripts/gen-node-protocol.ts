/*
 * Writes runtime/node/agentforge_node/requests.py, the Python side of the runtime node's requests, from the zod
 * schemas in runtime/node/protocol.ts (via z.toJSONSchema): one pydantic model per command, with the zod defaults,
 * types, enums and bounds, so the request is declared once. `--check` exits 1 when the committed file is stale.
 *
 *   npx tsx scripts/gen-node-protocol.ts [--check]
 *
 * Names: a camelCase field becomes a snake_case attribute with the JSON name as its alias (`dropRate` → drop_rate);
 * a Python keyword gets the name in PY_NAMES (`lambda` → lam). A nested object becomes a class named by its
 * zod `.meta({ title })`, else by its parent and field.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { NODE_REQUESTS, NODE_SCHEMAS } from '../runtime/node/protocol.ts';

export const OUT = fileURLToPath(new URL('../runtime/node/agentforge_node/requests.py', import.meta.url));

type JS = Record<string, any>;
const PY_NAMES: Record<string, string> = { lambda: 'lam' };
const SAFE_INT = 9007199254740991;
const pascal = (s: string) => s.replace(/(^|[-_])(\w)/g, (_, __, c: string) => c.toUpperCase());
const snake = (s: string) => PY_NAMES[s] ?? s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

const isNumber = (s: JS): boolean => s.type === 'number' || (Array.isArray(s.type) && s.type.includes('number'))
  || (s.anyOf ?? []).some(isNumber);

/** A JSON value as a Python literal; numbers of a `number` field stay floats (10000 → 10000.0). */
function literal(v: unknown, s: JS): string {
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return isNumber(s) && Number.isInteger(v) ? `${v}.0` : JSON.stringify(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x, i) => literal(x, s.prefixItems?.[i] ?? s.items ?? {})).join(', ')}]`;
  throw new Error(`gen-node-protocol: no Python literal for default ${JSON.stringify(v)}`);
}

class Emitter {
  readonly classes = new Map<string, { src: string; json: string }>();
  readonly order: string[] = [];

  /** The Python type of a JSON schema, with its bounds as an Annotated Field. */
  type(s: JS, owner: string, field: string): string {
    if (s.anyOf) return s.anyOf.map((x: JS) => this.type(x, owner, field)).join(' | ');
    if (Array.isArray(s.type)) return s.type.map((t: string) => this.type({ ...s, type: t }, owner, field)).join(' | ');
    if (s.enum) return `Literal[${s.enum.map((v: unknown) => JSON.stringify(v)).join(', ')}]`;
    const bounds: string[] = [];
    const bound = (key: string, py: string) => {
      if (typeof s[key] === 'number' && Math.abs(s[key]) !== SAFE_INT) bounds.push(`${py}=${s[key]}`);
    };
    bound('minimum', 'ge'); bound('maximum', 'le'); bound('exclusiveMinimum', 'gt'); bound('exclusiveMaximum', 'lt');
    bound('minLength', 'min_length'); bound('maxLength', 'max_length'); bound('minItems', 'min_length'); bound('maxItems', 'max_length');
    let t: string;
    switch (s.type) {
      case 'string': t = 'str'; break;
      case 'integer': t = 'int'; break;
      case 'number': t = 'float'; break;
      case 'boolean': t = 'bool'; break;
      case 'null': return 'None';
      case 'array': {
        const items: JS[] = s.prefixItems ?? [s.items ?? {}];
        t = `list[${[...new Set(items.map((x) => this.type(x, owner, field.replace(/s$/, ''))))].join(' | ')}]`;
        break;
      }
      case 'object':
        t = s.properties ? this.model(s.title ?? `${owner}${pascal(field)}`, s) : 'dict[str, Any]';
        break;
      case undefined: return 'Any';
      default: throw new Error(`gen-node-protocol: ${owner}.${field}: unsupported JSON schema type ${s.type}`);
    }
    return bounds.length ? `Annotated[${t}, Field(${bounds.join(', ')})]` : t;
  }

  /** Emits class `name` (once) and returns its name; `base` inherits the fields it shares verbatim. */
  model(name: string, s: JS, base?: { name: string; s: JS }): string {
    const json = JSON.stringify(s);
    const seen = this.classes.get(name);
    if (seen) {
      if (seen.json !== json) throw new Error(`gen-node-protocol: two different schemas are both named ${name}`);
      return name;
    }
    this.classes.set(name, { src: '', json });
    const required = new Set<string>(s.required ?? []);
    const lines: string[] = [];
    for (const [key, prop] of Object.entries<JS>(s.properties ?? {})) {
      if (base && JSON.stringify(base.s.properties?.[key]) === JSON.stringify(prop)) continue;
      const attr = snake(key);
      const type = this.type(prop, name, key);
      const alias = attr !== key ? `alias=${JSON.stringify(key)}` : '';
      let line: string;
      if (required.has(key)) line = alias ? `${attr}: ${type} = Field(${alias})` : `${attr}: ${type}`;
      else {
        const hasDefault = 'default' in prop;
        const dflt = hasDefault ? literal(prop.default, prop) : 'None';
        const t = hasDefault || type.includes('None') ? type : `${type} | None`;
        line = alias ? `${attr}: ${t} = Field(${dflt}, ${alias})` : `${attr}: ${t} = ${dflt}`;
      }
      lines.push(`    ${line}`);
    }
    const parent = base?.name ?? '_Request';
    this.classes.set(name, { src: `class ${name}(${parent}):\n${lines.join('\n') || '    pass'}\n`, json });
    this.order.push(name);
    return name;
  }
}

const jsonSchema = (s: z.ZodType): JS => z.toJSONSchema(s, { io: 'input', unrepresentable: 'throw' }) as JS;

export function generate(): string {
  const em = new Emitter();
  const bases = Object.entries(NODE_SCHEMAS).map(([name, s]) => ({ name, s: jsonSchema(s) }));
  for (const b of bases) em.model(b.name, b.s);
  const table: string[] = [];
  for (const [command, schema] of Object.entries(NODE_REQUESTS)) {
    const s = jsonSchema(schema);
    const base = bases.find((b) => Object.entries<JS>(b.s.properties).every(([k, v]) =>
      JSON.stringify(s.properties?.[k]) === JSON.stringify(v)));
    const name = `${pascal(command)}Request`;
    em.model(name, s, base);
    table.push(`    ${JSON.stringify(command)}: ${name},`);
  }
  return `"""GENERATED by scripts/gen-node-protocol.ts from runtime/node/protocol.ts - do not edit.

The runtime node's requests as pydantic models: names, types, bounds and defaults all come from the zod schemas.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_by_name=True, validate_by_alias=True,
                              allow_inf_nan=False, protected_namespaces=())


${em.order.map((n) => em.classes.get(n)!.src).join('\n\n')}

REQUESTS: dict[str, type[_Request]] = {
${table.join('\n')}
}
`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = generate();
  if (process.argv.includes('--check')) {
    let current = '';
    try { current = readFileSync(OUT, 'utf8'); } catch { /* missing counts as stale */ }
    if (current !== text) {
      console.error(`${OUT} is stale: run npx tsx scripts/gen-node-protocol.ts`);
      process.exit(1);
    }
    console.log(`${OUT} is current`);
  } else {
    writeFileSync(OUT, text);
    console.log(`wrote ${OUT}`);
  }
}
