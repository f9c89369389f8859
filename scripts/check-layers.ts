/*
 * The architecture, checked: every relative import of our TS/JS code must point to its own layer or a lower one,
 * no operator imports another operator, and no file-level import cycle exists (TS and the runtime node's Python).
 * The layer order is written here once; READMEs in each folder say the same in words. Exit 1 on any violation.
 *   npx tsx scripts/check-layers.ts
 */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Top to bottom: a folder may import from its own row and the rows below it. */
export const LAYERS: readonly string[][] = [
  ['dags'],
  ['operators'],
  ['runtime/eval'],
  ['runtime/rl'],
  ['runtime/synth'],
  ['runtime/agent'],
  ['runtime/rewards'],
  ['runtime/worlds'],
  ['runtime/models'],
  ['runtime/node'],
  ['runtime/sandbox'],
  ['runtime/engine', 'runtime/report'], // report: the CLI's `report` command reads the engine's ledger and nothing above it
  ['storage'],
  ['schemas'],
];

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = /\.(ts|mts|mjs|js)$/;

function walk(dir: string, out: string[] = [], ext = SOURCE): string[] {
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.') || e.name === '__pycache__') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out, ext);
    else if (ext.test(e.name)) out.push(p);
  }
  return out;
}

export function layerOf(file: string): number {
  return LAYERS.findIndex((row) => row.some((f) => file === f || file.startsWith(f + '/')));
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|^import\s+['"](\.{1,2}\/[^'"]+)['"]/gm;

export function tsImports(file: string): string[] {
  const src = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    const target = normalize(join(dirname(file), spec));
    if (existsSync(join(ROOT, target)) && statSync(join(ROOT, target)).isFile()) out.push(target);
  }
  return out;
}

/** `from .x import` / `from ..a.b import` / `from agentforge_node.x import` inside runtime/node, as files. */
export function pyImports(file: string, pkgRoot: string): string[] {
  const src = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  const resolve = (mod: string): string | null => {
    const base = join(ROOT, pkgRoot, ...mod.split('.'));
    if (existsSync(base + '.py')) return relative(ROOT, base + '.py');
    if (existsSync(join(base, '__init__.py'))) return relative(ROOT, join(base, '__init__.py'));
    return null;
  };
  const pkgOf = (f: string): string[] => relative(join(ROOT, pkgRoot), join(ROOT, dirname(f))).split('/').filter(Boolean);
  for (const m of src.matchAll(/^\s*from\s+(\.+)([\w.]*)\s+import\s+([\w, ()]+)/gm)) {
    const up = m[1].length - 1;
    const pkg = pkgOf(file).slice(0, pkgOf(file).length - up);
    const mod = [...pkg, ...(m[2] ? m[2].split('.') : [])].join('.');
    // `from . import x` imports the submodule x when it is one
    const names = m[2] ? [''] : m[3].replace(/[()]/g, '').split(',').map((s) => s.trim().split(/\s+/)[0]);
    for (const n of names) { const r = resolve(n ? `${mod}.${n}` : mod) ?? resolve(mod); if (r && r !== file) out.push(r); }
  }
  for (const m of src.matchAll(/^\s*(?:from|import)\s+(agentforge_node(?:\.\w+)*)/gm)) {
    const r = resolve(m[1]);
    if (r && r !== file) out.push(r);
  }
  return out;
}

export function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 1);
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 1) cycles.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return cycles;
}

export function check(): string[] {
  const problems: string[] = [];
  const files = LAYERS.flat().filter((d) => existsSync(join(ROOT, d))).flatMap((d) => walk(d));
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const deps = tsImports(f);
    graph.set(f, deps);
    const lf = layerOf(f);
    for (const d of deps) {
      const ld = layerOf(d);
      if (ld === -1) continue; // tests, bench, scripts, data: outside the layered code
      if (ld < lf) problems.push(`${f} imports ${d}: ${LAYERS[lf].join('|')} may not import from the layer above it (${LAYERS[ld].join('|')}); move the shared code down`);
      if (f.startsWith('operators/') && d.startsWith('operators/') && !f.startsWith('operators/smoke/') && !f.startsWith('operators/bench/'))
        problems.push(`${f} imports ${d}: an operator never imports another operator; move the shared code into runtime/`);
    }
  }
  for (const c of findCycles(graph)) problems.push(`import cycle: ${c.join(' → ')}`);
  const pyRoot = 'runtime/node';
  if (existsSync(join(ROOT, pyRoot, 'agentforge_node'))) {
    const py = walk(join(pyRoot, 'agentforge_node'), [], /\.py$/);
    const pg = new Map(py.map((f) => [f, pyImports(f, pyRoot).filter((d) => !d.endsWith('__init__.py'))]));
    for (const c of findCycles(pg)) problems.push(`python import cycle: ${c.join(' → ')}`);
  }
  return problems;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const problems = check();
  for (const p of problems) console.error(p);
  console.log(problems.length ? `layers: ${problems.length} problem(s)` : 'layers: ok (no upward import, no operator→operator import, no cycle)');
  process.exit(problems.length ? 1 : 0);
}
