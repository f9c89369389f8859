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
export const REPO_ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');

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

/** Per-file hashes (repo-relative path → sha256) of an operator's code: its module closure plus declared extra paths. */
export function codeFiles(module: string, extra: string[] = []): Record<string, string> {
  const files = new Set(localModuleClosure(module));
  for (const p of extra) for (const f of listFiles(resolve(REPO_ROOT, p))) files.add(f);
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
