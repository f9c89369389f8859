import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDag, type Dag } from '../dag.ts';
import { UsageError } from '../scheduler.ts';
import { localModuleClosure } from '../fingerprint.ts';

const BUNDLE = Symbol.for('agentforge.bundle');

/** Loads `export default dag(...)` from a module path, or from dags/<name>.ts when given a bare name. */
export async function loadDag(spec: string): Promise<{ dag: Dag; file: string }> {
  const candidates = [spec, `dags/${spec}.ts`, `dags/${spec}`].map((p) => resolve(p));
  const file = candidates.find((p) => existsSync(p));
  if (!file) throw new UsageError(`no DAG module at '${spec}' (tried ${candidates.join(', ')})`);
  let mod: { default?: unknown };
  try {
    // Under bin/agentforge.mjs the DAG module is a lazy chunk of the CLI bundle (runtime/engine/cli/bundle.mjs).
    const bundled = (globalThis as { [BUNDLE]?: { dags: Record<string, () => Promise<{ default?: unknown }>> } })[BUNDLE]?.dags[file];
    mod = await (bundled ? bundled() : import(pathToFileURL(file).href));
  } catch (e) {
    const err = e as Error;
    // Node's loader can hide a syntax error behind another one (outside a "type": "module" package a TS file
    // goes through require(esm), which reports "Cannot require() ES Module … in a cycle"): parse the DAG and the
    // local modules it imports, and name the real error by file:line:column when there is one.
    const syntax = await firstSyntaxError(file);
    if (syntax) throw new UsageError(`DAG module ${file} failed to import: syntax error at ${syntax}`);
    const unresolved = firstMissingPackage(file);
    if (unresolved) throw new UsageError(`DAG module ${file} failed to import: ${unresolved}`);
    if (/Cannot require\(\) ES Module/.test(err.message)) {
      throw new UsageError(`DAG module ${file} failed to import: Node loaded it as CommonJS (no package.json with "type": "module" above it), and as CommonJS it cannot import what it imports (${err.message.split('.')[0]}). Add {"type": "module"} to a package.json in its folder, or rename it to .mts`);
    }
    throw new UsageError(`DAG module ${file} failed to import: ${err.message}\n${(err.stack ?? '').split('\n').slice(1, 6).join('\n')}`);
  }
  if (!isDag(mod.default)) throw new UsageError(`DAG module ${file} must \`export default dag('name', (d) => …)\``);
  return { dag: mod.default, file };
}

/** `file:line:col: message` and the offending line for the first file (the DAG, then its local imports) that fails to parse. */
async function firstSyntaxError(entry: string): Promise<string | undefined> {
  let esbuild: typeof import('esbuild');
  try { esbuild = await import('esbuild'); } catch { return undefined; }
  let files: string[];
  try { files = localModuleClosure(entry); } catch { files = [entry]; }
  for (const f of files) {
    const loader = /\.[cm]?tsx?$/.test(f) ? (f.endsWith('x') ? 'tsx' : 'ts') : /\.[cm]?jsx$/.test(f) ? 'jsx' : 'js';
    let source: string;
    try { source = readFileSync(f, 'utf8'); } catch { continue; }
    try { esbuild.transformSync(source, { loader, sourcefile: f, format: 'esm', logLevel: 'silent' }); } catch (e) {
      const m = (e as { errors?: { text: string; location?: { file: string; line: number; column: number; lineText: string } | null }[] }).errors?.[0];
      if (!m) continue;
      const at = m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1}` : f;
      return `${at}: ${m.text}${m.location ? `\n    ${m.location.lineText}\n    ${' '.repeat(m.location.column)}^` : ''}`;
    }
  }
  return undefined;
}

const IMPORT_SPEC = /\b(?:import|export)\s+(?:[^'"`;()]*?\sfrom\s*)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** `package 'x' … cannot be found from FILE:line` for the first bare import in the DAG's local closure that does not resolve. */
function firstMissingPackage(entry: string): string | undefined {
  let files: string[];
  try { files = localModuleClosure(entry); } catch { files = [entry]; }
  for (const f of files) {
    let source: string;
    try { source = readFileSync(f, 'utf8'); } catch { continue; }
    for (const m of source.matchAll(IMPORT_SPEC)) {
      const spec = m[1] ?? m[2];
      if (/^(\.|\/|node:|file:|data:)/.test(spec)) continue;
      try { createRequire(f).resolve(spec); } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') continue; // exists, just not require()-able
        const line = source.slice(0, m.index).split('\n').length;
        return `package '${spec}', imported at ${f}:${line}, cannot be found from that folder (no node_modules above it has it): install it there, or import it by a path`;
      }
    }
  }
  return undefined;
}
