import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Branded ids so a node id is never passed where a fingerprint is expected. */
export type NodeId = string & { readonly __brand: 'NodeId' };
export type Fingerprint = string & { readonly __brand: 'Fingerprint' };

/**
 * Canonical JSON: object keys sorted, no whitespace, undefined dropped, -0 → 0, non-finite numbers refused.
 * Key order and formatting of params must never change a cache key; golden-hash tests pin this.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`canonicalJson: non-finite number ${value}`);
      return JSON.stringify(Object.is(value, -0) ? 0 : value);
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
    }
    default:
      throw new Error(`canonicalJson: cannot serialise ${typeof value}`);
  }
}

export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** Root of the project (the folder holding package.json above this file). */
export const REPO_ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../..');

const IMPORT_RE = /(?:import|export)\s+(?:type\s+)?(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function resolveLocal(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.') && !spec.startsWith('/')) return undefined; // packages: pinned by the lockfile
  const base = resolve(dirname(from), spec);
  const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

/** The module and every local module it imports, transitively (type-only imports too: they can change zod schemas). */
export function localModuleClosure(entry: string): string[] {
  const seen = new Set<string>();
  const stack = [resolve(entry)];
  while (stack.length) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!/\.(ts|mts|js|mjs)$/.test(file)) continue;
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(IMPORT_RE)) {
      const dep = resolveLocal(file, m[1] ?? m[2]);
      if (dep && !seen.has(dep)) stack.push(dep);
    }
  }
  return [...seen].sort();
}

const PY_FROM_RE = /^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(?:\(([^)]*)\)|([^\n#]*))/gm;
const PY_IMPORT_RE = /^[ \t]*import[ \t]+([\w.]+)/gm;

/** A Python module's file (`pkg/x.py` or `pkg/x/__init__.py`) under `dir`, for dotted path `mod`. */
function pyFile(dir: string, mod: string): string | undefined {
  const base = join(dir, ...mod.split('.').filter(Boolean));
  return [`${base}.py`, join(base, '__init__.py')].find((c) => existsSync(c) && statSync(c).isFile());
}

/**
 * A Python module and the modules of its own package it imports, transitively (relative imports and absolute ones
 * under the package's top-level name; other packages are pinned by requirements). Names imported from a package
 * that are its submodules count too, as do the `__init__.py` files of every package on the way.
 */
export function pythonModuleClosure(entry: string): string[] {
  let root = dirname(resolve(entry));
  while (existsSync(join(dirname(root), '__init__.py'))) root = dirname(root);
  const top = root.split('/').pop()!;
  const seen = new Set<string>();
  const stack = [resolve(entry)];
  const add = (f: string | undefined) => { if (f && !seen.has(f)) stack.push(f); };
  while (stack.length) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (let d = dirname(file); d === root || d.startsWith(`${root}/`); d = dirname(d)) add(pyFile(d, '__init__'));
    const src = readFileSync(file, 'utf8');
    const pkgDir = (dots: string, mod: string): string | undefined => {
      if (dots) {
        let d = dirname(file);
        for (let i = 1; i < dots.length; i++) d = dirname(d);
        return d;
      }
      return mod === top || mod.startsWith(`${top}.`) ? dirname(root) : undefined;
    };
    for (const m of src.matchAll(PY_FROM_RE)) {
      const [, dots, mod, inParens, onLine] = m;
      const names = inParens ?? onLine;
      const dir = pkgDir(dots, mod);
      if (!dir) continue;
      const target = mod ? pyFile(dir, mod) : join(dir, '__init__.py');
      add(target);
      const sub = mod ? join(dir, ...mod.split('.')) : dir;
      for (const n of names.split(',').map((x) => x.trim().split(/\s+/)[0]).filter(Boolean)) add(pyFile(sub, n));
    }
    for (const m of src.matchAll(PY_IMPORT_RE)) {
      if (m[1] === top || m[1].startsWith(`${top}.`)) add(pyFile(dirname(root), m[1]));
    }
  }
  return [...seen].sort();
}

function listFiles(path: string): string[] {
  if (!existsSync(path)) return [];
  const st = statSync(path);
  if (st.isFile()) return [path];
  const out: string[] = [];
  for (const name of readdirSync(path).sort()) {
    if (name === '__pycache__' || name === 'node_modules' || name.startsWith('.')) continue;
    out.push(...listFiles(join(path, name)));
  }
  return out;
}

const fileHashCache = new Map<string, { mtimeMs: number; size: number; hash: string }>();
function hashFile(file: string): string {
  const st = statSync(file);
  const hit = fileHashCache.get(file);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.hash;
  const hash = sha256(readFileSync(file));
  fileHashCache.set(file, { mtimeMs: st.mtimeMs, size: st.size, hash });
  return hash;
}

/**
 * Per-file hashes (repo-relative path → sha256) of an operator's code: its module closure plus declared extra paths
 * (a folder: every file in it; a `.py` file: its Python import closure).
 */
export function codeFiles(module: string, extra: string[] = []): Record<string, string> {
  const files = new Set(localModuleClosure(module));
  for (const p of extra) {
    const full = resolve(REPO_ROOT, p);
    for (const f of p.endsWith('.py') ? pythonModuleClosure(full) : listFiles(full)) files.add(f);
  }
  const out: Record<string, string> = {};
  for (const f of [...files].sort()) out[relative(REPO_ROOT, f)] = hashFile(f);
  return out;
}

/** Everything that determines a node's output. Stored in the ledger so `status` can say what changed. */
export interface KeyParts {
  op: string;
  version: number;
  code: Record<string, string>;
  params: unknown;
  inputs: Record<string, string | string[] | null>;
  env: Record<string, string | null>;
  /** The operator's own fingerprint of outside state (absent for most operators). */
  external?: unknown;
}

export function nodeKey(parts: KeyParts): Fingerprint {
  return sha256(canonicalJson({ v: 1, ...parts })).slice(0, 32) as Fingerprint;
}
