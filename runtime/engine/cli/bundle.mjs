/*
 * Fast start for the CLI (plain JavaScript: it runs before any TypeScript loader exists).
 *
 * Registering tsx's loader hooks costs more than everything a no-op `run` does, so the CLI entry and the DAG
 * module(s) named on the command line are bundled by esbuild (bundle-build.mjs) into ESM chunks cached under
 * node_modules/.cache/agentforge/cli/, and imported with plain Node. A bundle is reused only while every file
 * esbuild read (and every folder holding one) has the size/mtime/ctime/inode recorded at build time; files
 * modified within a few seconds of the build are compared by content hash as well. Anything else rebuilds.
 *
 * Module identity survives bundling:
 *  - each module sees its own import.meta.url / dirname / filename (bundle-build.mjs rewrites them);
 *  - stack frames in a chunk map back to the source file and line (the build keeps a line table from esbuild's
 *    source map): `sourceAt` for runtime/engine/operator.ts's callerModule, and Error.prepareStackTrace for people;
 *  - DAG modules stay lazy: loadDag (runtime/engine/cli/load.ts) imports them through `dags` when it asks for them.
 *
 * AGENTFORGE_BUNDLE=0 uses tsx instead; AGENTFORGE_BUNDLE_DEBUG=1 says why a bundle was rebuilt or not used.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CACHE_ROOT, CLI_ENTRY, FORMAT, REPO_ROOT, debug, isFresh } from './bundle-manifest.mjs';

/** The hook runtime/engine/operator.ts and runtime/engine/cli/load.ts look for. */
export const HOOK = Symbol.for('agentforge.bundle');
const MODULE_EXT = new Set(['.ts', '.mts', '.cts', '.tsx', '.js', '.mjs', '.cjs', '.jsx']);

/**
 * DAG modules the command line may name: every non-option argument that loadDag would resolve to a module file
 * (same candidates, same order). Over-including is harmless (a lazy chunk that is never imported).
 */
export function dagCandidates(argv, cwd = process.cwd()) {
  const out = new Set();
  for (const a of argv.slice(1)) {
    if (a.startsWith('-')) continue;
    const file = [a, `dags/${a}.ts`, `dags/${a}`].map((p) => resolve(cwd, p)).find((p) => existsSync(p));
    if (!file || !MODULE_EXT.has(extname(file))) continue;
    try { if (statSync(file).isFile()) out.add(file); } catch { /* vanished */ }
  }
  return [...out].sort();
}

export function bundleKey(dags) {
  const id = JSON.stringify({ FORMAT, node: process.versions.node, root: REPO_ROOT, entry: CLI_ENTRY, dags });
  return createHash('sha256').update(id).digest('hex').slice(0, 20);
}

function readJson(file) {
  try { return JSON.parse(readFileSync(file, 'utf8')); } catch { return undefined; }
}

/** A valid cached bundle for these DAGs, building one if needed; a string says why there is none. */
async function bundleFor(dags) {
  const dir = join(CACHE_ROOT, bundleKey(dags));
  const cached = readJson(join(dir, 'manifest.json'));
  if (cached?.format === FORMAT && existsSync(join(dir, cached.build, cached.entry)) && isFresh(cached)) return { dir, manifest: cached };
  // A build that failed is not retried until one of the files it read changes.
  const failed = readJson(join(dir, 'failed.json'));
  if (failed?.format === FORMAT && isFresh(failed)) return `build failed: ${failed.reason}`;
  try { mkdirSync(dir, { recursive: true }); accessSync(dir, constants.W_OK); } catch (e) { return `cache not writable: ${e.message}`; }
  let build;
  try { ({ build } = await import('./bundle-build.mjs')); } catch (e) { return `esbuild unavailable: ${e.message}`; }
  try {
    return { dir, manifest: await build({ dir, dags }) };
  } catch (e) {
    if (e.records) {
      try {
        const tmp = join(dir, `failed.json.${process.pid}`);
        writeFileSync(tmp, JSON.stringify({ format: FORMAT, reason: e.message, dags, ...e.records }));
        renameSync(tmp, join(dir, 'failed.json'));
      } catch { /* not cached: the next run tries again */ }
    }
    return `build failed: ${e.message}`;
  }
}

/* ---- runtime hooks: stack frames in a chunk → source file and line ---- */

function lookup(runs, line0) {
  let lo = 0, hi = runs.length - 1, hit = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (runs[mid][0] <= line0) { hit = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return hit < 0 ? undefined : runs[hit];
}

export function makeHook(buildDir, manifest) {
  // Node names a module by its real path (stack frames too), whatever symlinks lead to the cache.
  const real = realpathSync(buildDir);
  const chunks = new Map(Object.entries(manifest.chunks).map(([name, runs]) => [join(real, name), runs]));
  const { sources } = manifest;
  /** Original position of a 1-based line/column in a chunk; null for a chunk line with no source (esbuild's helpers). */
  const position = (file, line, col) => {
    const runs = chunks.get(file);
    if (!runs) return undefined;
    const run = lookup(runs, line - 1);
    if (!run || !sources[run[1]].startsWith('/')) return null;
    if (run.length < 4) return { file: sources[run[1]] }; // a package: the file, not the line
    return { file: sources[run[1]], line: line + run[2], col: Math.max(1, col + run[3]) };
  };
  const sourceAt = (file, line, col) => {
    const p = position(file, line, col);
    return p === undefined ? undefined : p && p.file;
  };
  const mapFrame = (cs) => {
    const s = String(cs);
    const url = cs.getFileName?.();
    if (!url || !url.startsWith('file://')) return s;
    const line = cs.getLineNumber(), col = cs.getColumnNumber();
    const p = position(fileURLToPath(url), line, col);
    if (!p || p.line === undefined) return s;
    return s.replace(`${url}:${line}:${col}`, `${p.file}:${p.line}:${p.col}`); // as tsx (source maps) prints it
  };
  const prepareStackTrace = (err, callsites) => {
    let head;
    try { head = Error.prototype.toString.call(err); } catch { head = '<error>'; }
    if (!callsites.length) return head;
    let frames;
    try { frames = callsites.map(mapFrame); } catch { frames = callsites.map(String); }
    return `${head}\n    at ${frames.join('\n    at ')}`;
  };
  return { buildDir, dags: {}, sourceAt, prepareStackTrace };
}

/** Marks a build as in use by this process so a rebuild elsewhere does not delete chunks we may still import. */
function markInUse(buildDir) {
  const mark = join(buildDir, `.in-use-${process.pid}`);
  try {
    writeFileSync(mark, '');
    process.on('exit', () => { try { unlinkSync(mark); } catch { /* gone */ } });
  } catch { /* read-only cache: gc keeps recent builds anyway */ }
}

async function runTsx(argv) {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('./main.ts');
  return main(argv);
}

/**
 * Runs the CLI: from a cached bundle when possible, otherwise through tsx. Resolves to the exit code.
 * AGENTFORGE_BUNDLE=0: always tsx; AGENTFORGE_BUNDLE=1: the bundle or an error (tests use it).
 */
export async function launch(argv) {
  const mode = process.env.AGENTFORGE_BUNDLE;
  if (mode === '0') return runTsx(argv);
  let mod, why;
  try {
    const b = await bundleFor(dagCandidates(argv));
    if (typeof b === 'string') why = b;
    else mod = await importBundle(b);
  } catch (e) {
    why = `bundle unusable: ${e?.stack ?? e}`;
  }
  if (!mod) {
    if (mode === '1') { process.stderr.write(`agentforge: AGENTFORGE_BUNDLE=1 but ${why}\n`); return 1; }
    debug(`using tsx: ${why}`);
    return runTsx(argv);
  }
  return mod.main(argv);
}

async function importBundle({ dir, manifest }) {
  const buildDir = join(dir, manifest.build);
  markInUse(buildDir);
  const hook = makeHook(buildDir, manifest);
  const previous = Error.prepareStackTrace;
  globalThis[HOOK] = hook;
  Error.prepareStackTrace = hook.prepareStackTrace;
  try {
    const mod = await import(pathToFileURL(join(buildDir, manifest.entry)).href);
    Object.assign(hook.dags, mod.dags);
    return mod;
  } catch (e) {
    Error.prepareStackTrace = previous;
    delete globalThis[HOOK];
    throw e;
  }
}
