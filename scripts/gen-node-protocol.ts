/*
 * Writes runtime/node/agentforge_node/requests/, the Python side of the runtime node's requests, from the zod
 * schemas in runtime/node/protocol.ts (via z.toJSONSchema): one pydantic model per command, with the zod defaults,
 * types, enums and bounds, so the request is declared once. `--check` exits 1 when a committed file is stale.
 *
 *   npx tsx scripts/gen-node-protocol.ts [--check]
 *
 * Names: a camelCase field becomes a snake_case attribute with the JSON name as its alias (`dropRate` → drop_rate);
 * a Python keyword gets the name in PY_NAMES (`lambda` → lam). A nested object becomes a class named by its
 * zod `.meta({ title })`, else by its parent and field.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { NODE_REQUESTS, NODE_SCHEMAS } from '../runtime/node/protocol.ts';

export const OUT = fileURLToPath(new URL('../runtime/node/agentforge_node/requests', import.meta.url));

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
const moduleOf = (command: string) => command.replace(/-/g, '_');

const GENERATED = 'GENERATED by scripts/gen-node-protocol.ts from runtime/node/protocol.ts';

/**
 * The generated files, by path under agentforge_node/requests/: one module per command (so an operator's key
 * depends on its own command's request only), each with the request as `Request`, and the shared base class.
 */
export function generate(): Map<string, string> {
  const files = new Map<string, string>();
  files.set('__init__.py', `"""The runtime node's requests, one module per command (GENERATED by scripts/gen-node-protocol.ts)."""\n`);
  files.set('_base.py', `"""${GENERATED} - do not edit.

The base of every generated request: unknown fields, coercions and non-finite numbers are refused, as zod does.
"""
from typing import Annotated, Any, Literal  # noqa: F401 - for the request modules, whichever their fields need

from pydantic import BaseModel, ConfigDict, Field  # noqa: F401


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_by_name=True, validate_by_alias=True,
                              allow_inf_nan=False, protected_namespaces=())
`);
  const bases = Object.entries(NODE_SCHEMAS).map(([name, s]) => ({ name, s: jsonSchema(s) }));
  for (const [command, schema] of Object.entries(NODE_REQUESTS)) {
    const em = new Emitter();
    const s = jsonSchema(schema);
    const base = bases.find((b) => Object.entries<JS>(b.s.properties).every(([k, v]) =>
      JSON.stringify(s.properties?.[k]) === JSON.stringify(v)));
    if (base) em.model(base.name, base.s);
    const name = `${pascal(command)}Request`;
    em.model(name, s, base);
    files.set(`${moduleOf(command)}.py`, `"""${GENERATED} (NODE_REQUESTS['${command}']) - do not edit."""
from ._base import Annotated, Any, Field, Literal, _Request  # noqa: F401


${em.order.map((n) => em.classes.get(n)!.src).join('\n\n')}

Request = ${name}
`);
  }
  return files;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const want = generate();
  const have = existsSync(OUT) ? readdirSync(OUT).filter((f) => f.endsWith('.py')) : [];
  if (process.argv.includes('--check')) {
    const stale = [...want].filter(([f, text]) => !existsSync(join(OUT, f)) || readFileSync(join(OUT, f), 'utf8') !== text).map(([f]) => f)
      .concat(have.filter((f) => !want.has(f)));
    if (stale.length) {
      console.error(`${OUT}: ${stale.join(', ')} stale: run npx tsx scripts/gen-node-protocol.ts`);
      process.exit(1);
    }
    console.log(`${OUT} is current`);
  } else {
    mkdirSync(OUT, { recursive: true });
    for (const f of have) if (!want.has(f)) rmSync(join(OUT, f));
    for (const [f, text] of want) writeFileSync(join(OUT, f), text);
    console.log(`wrote ${want.size} files to ${OUT}`);
  }
}
