/*
 * Builds the CLI bundle that bundle.mjs imports (only when no valid cached one exists; see bundle.mjs).
 *
 * One esbuild build, entry points: the CLI (runtime/engine/cli/main.ts) and, behind `import()` so they stay lazy, the DAG
 * modules named on the command line. Code splitting keeps every other `await import()` lazy too (DuckDB, p-queue,
 * the sql/status/gc commands…). Packages stay external (Node loads them from node_modules as before) except the
 * pure-JS ones in BUNDLED, which load much faster from one chunk than as hundreds of files.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CACHE_ROOT, CLI_ENTRY, FORMAT, REPO_ROOT, debug, hashDir, statSig } from './bundle-manifest.mjs';

/** Packages bundled instead of imported from node_modules: pure JS, no import.meta/__dirname, loaded on every start. */
const BUNDLED = ['zod'];
/** Files read within this many ms of their mtime/ctime are also checked by content (coarse timestamps, racy edits). */
const RACY_MS = 3000;
/** Superseded builds younger than this are kept: another process may have just picked one. */
const KEEP_RECENT_MS = 10 * 60_000;
/** Other bundles are dropped after this long unused (ORPHAN_MS when one of their DAG modules no longer exists). */
const UNUSED_MS = 14 * 24 * 3600_000;
const ORPHAN_MS = 3600_000;

const LOADERS = { '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.tsx': 'tsx', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.jsx': 'jsx', '.json': 'json' };
const packageName = (spec) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
const isBare = (spec) => /^[@\w]/.test(spec) && !/^[a-z]+:/i.test(spec);

/** Folder a bare import of `pkg` resolves from, walking up from `from` as Node does (undefined: not installed). */
function packageDir(from, pkg) {
  for (let d = from; ; d = dirname(d)) {
    const cand = join(d, 'node_modules', pkg);
    if (existsSync(cand)) return cand;
    if (dirname(d) === d) return undefined;
  }
}

/**
 * esbuild plugin: the virtual entry; every file is read here (stat before and after, so what the manifest
 * records is what was bundled) and a module using import.meta gets its own values; packages are external except
 * BUNDLED.
 */
function plugin({ dags, reads, externals, noteFolders, bundleDir, zodExternal }) {
  return {
    name: 'agentforge',
    setup(b) {
      b.onResolve({ filter: /^agentforge-entry$/ }, () => ({ path: 'entry', namespace: 'agentforge-entry' }));
      b.onLoad({ filter: /.*/, namespace: 'agentforge-entry' }, () => ({
        resolveDir: REPO_ROOT,
        loader: 'js',
        contents: [
          `export { main } from ${JSON.stringify(CLI_ENTRY)};`,
          `export const dags = {${dags.map((f) => `\n  ${JSON.stringify(f)}: () => import(${JSON.stringify(f)}),`).join('')}\n};`,
        ].join('\n'),
      }));
      b.onResolve({ filter: /.*/ }, (a) => {
        if (a.namespace !== 'file' || !isBare(a.path) || isBuiltin(a.path)) return undefined;
        const pkg = packageName(a.path);
        const importerDir = dirname(a.importer);
        if (BUNDLED.includes(pkg) && !(zodExternal && pkg === 'zod')) return undefined; // esbuild resolves and bundles it
        // Node resolves the external import from the chunk's folder: it must find the same package the source would.
        if (packageDir(importerDir, pkg) !== packageDir(bundleDir, pkg)) {
          return { errors: [{ text: `${a.importer} would resolve '${pkg}' differently from the bundle` }] };
        }
        externals.add(a.path);
        return { path: a.path, external: true };
      });
      b.onLoad({ filter: /.*/ }, (a) => {
        if (a.namespace !== 'file') return undefined;
        const loader = LOADERS[extname(a.path)];
        if (!loader) return { errors: [{ text: `no loader for ${a.path}` }] };
        let before, buf;
        for (let attempt = 0; ; attempt++) { // the recorded stat must be the one of the bytes bundled
          before = statSync(a.path);
          buf = readFileSync(a.path);
          if (statSig(statSync(a.path)).join() === statSig(before).join()) break;
          if (attempt === 5) {
            reads.set(a.path, [a.path, [-1], null]); // never fresh: a failure for this reason is not remembered
            throw new Error(`${a.path} keeps changing while being read`);
          }
        }
        const at = Date.now();
        reads.set(a.path, [a.path, statSig(before), racy(before, at) ? createHash('sha256').update(buf).digest('hex') : null]);
        noteFolders(a.path);
        let contents = buf.toString('utf8');
        if (loader !== 'json' && /\bimport\s*\.\s*meta\b/.test(contents)) {
          // import.meta is the chunk's in a bundle: give each module its own (esbuild's define maps the uses here).
          // A use other than .url/.dirname/.filename cannot be kept faithful: refuse (the CLI falls back to tsx).
          if (/\bimport\s*\.\s*meta\b(?!\s*\.\s*(?:url|dirname|filename)\b)/.test(contents.replace(/^\s*(?:\/\/|\*|\/\*).*$/gm, ''))) {
            return { errors: [{ text: `${a.path} uses import.meta in a way the bundle cannot reproduce` }] };
          }
          const url = pathToFileURL(a.path).href;
          // Same line as the module's first line, so line numbers are unchanged.
          contents = `var __af_url = ${JSON.stringify(url)}, __af_dirname = ${JSON.stringify(dirname(a.path))}, __af_filename = ${JSON.stringify(a.path)};${contents.startsWith('#!') ? '//' : ''}${contents}`;
        }
        return { contents, loader, resolveDir: dirname(a.path) };
      });
    },
  };
}

/*
 * ---- source maps → per-chunk line table ----
 * Runs of generated lines: [first line (0-based), source index, line delta, column delta] where line delta is the
 * original line minus the generated one (the column delta is the run's first line's, so columns are approximate).
 * Lines from packages keep only [first line, source index]: which file, not where in it (keeps the table small).
 */

const B64 = new Map([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]));
function decodeVlq(str) {
  const out = [];
  let value = 0, shift = 0;
  for (const ch of str) {
    const d = B64.get(ch);
    if (d === undefined) throw new Error(`bad source map character ${ch}`);
    value += (d & 31) << shift;
    if (d & 32) { shift += 5; continue; }
    out.push(value & 1 ? -(value >>> 1) : value >>> 1);
    value = 0; shift = 0;
  }
  return out;
}

export function lineRuns(map, sourceIndex, detailed) {
  const runs = [];
  let src = 0, origLine = 0, origCol = 0;
  const lines = map.mappings.split(';');
  for (let gen = 0; gen < lines.length; gen++) {
    let genCol = 0, first;
    for (const seg of lines[gen].split(',')) {
      if (!seg) continue;
      const v = decodeVlq(seg);
      genCol += v[0];
      if (v.length >= 4) {
        src += v[1]; origLine += v[2]; origCol += v[3];
        if (!first) first = { src: sourceIndex(map.sources[src]), line: origLine - gen, col: origCol - genCol };
      }
    }
    if (!first) continue;
    const last = runs[runs.length - 1];
    if (detailed(first.src)) {
      if (!last || last[1] !== first.src || last[2] !== first.line) runs.push([gen, first.src, first.line, first.col]);
    } else if (!last || last[1] !== first.src) {
      runs.push([gen, first.src]);
    }
  }
  return runs;
}

/* ---- zod may be bundled only if no external package the bundle imports can reach its own copy of zod ---- */

/** Package name → what it declares it may import (every installed copy), from npm's node_modules/.package-lock.json. */
function installedDeps() {
  let lock;
  try { lock = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/.package-lock.json'), 'utf8')).packages; } catch { return undefined; }
  const byName = new Map();
  for (const [p, info] of Object.entries(lock)) {
    const name = p.slice(p.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const deps = [info.dependencies, info.optionalDependencies, info.peerDependencies].flatMap((d) => Object.keys(d ?? {}));
    byName.set(name, [...(byName.get(name) ?? []), ...deps]);
  }
  return byName;
}

/** Could `pkg` (or anything it depends on) import zod? A package npm does not know counts as yes. */
function dependsOnZod(pkg, byName) {
  if (!byName || !byName.has(pkg)) return true;
  const seen = new Set();
  const stack = [pkg];
  while (stack.length) {
    const n = stack.pop();
    if (n === 'zod') return true;
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push(...(byName.get(n) ?? []));
  }
  return false;
}

/** Does importing `spec` (from the repo) statically or dynamically reach `zod`? Unknown counts as yes. */
async function reachesZod(esbuild, spec) {
  try {
    const r = await esbuild.build({
      stdin: { contents: `import(${JSON.stringify(spec)});`, resolveDir: REPO_ROOT }, bundle: true, platform: 'node', format: 'esm',
      write: false, metafile: true, outdir: join(REPO_ROOT, '.af-probe'), splitting: true, logLevel: 'silent',
      external: ['zod', 'zod/*'], loader: { '.node': 'empty' },
    });
    return Object.values(r.metafile.inputs).some((i) => i.imports.some((im) => /^zod(\/|$)/.test(im.path)));
  } catch {
    return true;
  }
}

/* ---- the build ---- */

const racy = (st, at) => Math.max(st.mtimeMs, st.ctimeMs) > at - RACY_MS;

/** Stat signature of a file (with its content hash when racy), taken now. */
function fileRecord(p) {
  const st = statSync(p, { throwIfNoEntry: false });
  if (!st?.isFile()) return undefined;
  return [p, statSig(st), racy(st, Date.now()) ? createHash('sha256').update(readFileSync(p)).digest('hex') : null];
}

/**
 * Records, the first time a file of theirs is read (so before any import in that file is resolved): the file's
 * folder and those above it up to (not including) its package root, where a new file or node_modules could change
 * what an import resolves to, and the tsconfig/jsconfig/package.json files that decide how it compiles and resolves.
 */
function folderNoter(dirs, files) {
  return (file) => {
    for (let d = dirname(file), first = true; ; d = dirname(d), first = false) {
      const root = existsSync(join(d, 'package.json'));
      if ((first || !root) && !dirs.has(d)) {
        const st = statSync(d);
        dirs.set(d, [d, statSig(st), racy(st, Date.now()) ? hashDir(d) : null]);
      }
      for (const f of ['tsconfig.json', 'jsconfig.json', ...(root ? ['package.json'] : [])]) {
        const p = join(d, f);
        if (!files.has(p)) { const r = fileRecord(p); if (r) files.set(p, r); }
      }
      if (root || dirname(d) === d) return;
    }
  };
}

async function esbuildOnce(esbuild, { dags, buildDir, zodExternal }) {
  const reads = new Map();
  const externals = new Set();
  const dirs = new Map();
  const configs = new Map();
  // npm rewrites node_modules/.package-lock.json on every install: a package (un)installed means a rebuild.
  const lock = fileRecord(join(REPO_ROOT, 'node_modules/.package-lock.json'));
  if (lock) configs.set(lock[0], lock);
  const records = () => ({ inputs: [...reads.values(), ...configs.values()], dirs: [...dirs.values()] });
  let result;
  try {
    result = await esbuild.build({
      entryPoints: ['agentforge-entry'],
      absWorkingDir: REPO_ROOT,
      bundle: true, format: 'esm', platform: 'node', target: `node${process.versions.node}`,
      splitting: true, outdir: buildDir, entryNames: 'entry', chunkNames: 'c-[hash]', outExtension: { '.js': '.mjs' },
      keepNames: true, sourcemap: 'external', sourcesContent: false, write: false, logLevel: 'silent',
      define: { 'import.meta.url': '__af_url', 'import.meta.dirname': '__af_dirname', 'import.meta.filename': '__af_filename' },
      plugins: [plugin({ dags, reads, externals, noteFolders: folderNoter(dirs, configs), bundleDir: buildDir, zodExternal })],
      logOverride: { 'unsupported-dynamic-import': 'warning', 'unsupported-require-call': 'warning' },
    });
  } catch (e) {
    // esbuild's verdict on these exact files: the same files will fail the same way (bundle.mjs remembers it).
    throw Object.assign(new Error(e.errors?.length ? e.errors.map((x) => `${x.location ? `${x.location.file}:${x.location.line}: ` : ''}${x.text}`).join('; ') : e.message), { records: records() });
  }
  // `import(expr)` is left to Node at run time, where no TypeScript loader exists and relative paths would be the
  // chunk's: refuse (tsx runs it instead). loadDag's own is the exception: DAG modules come from the bundle.
  for (const w of result.warnings) {
    if ((w.id === 'unsupported-dynamic-import' || w.id === 'unsupported-require-call') && w.location?.file !== 'runtime/engine/cli/load.ts') {
      throw Object.assign(new Error(`${w.location?.file}:${w.location?.line}: ${w.text}`), { records: records() });
    }
  }
  return { result, reads, externals, dirs, configs };
}

/** Builds the bundle for `dags` into a fresh folder under `dir`, records it in dir/manifest.json, returns the manifest. */
export async function build({ dir, dags }) {
  const esbuild = await import('esbuild');
  try {
    const id = `b${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const buildDir = join(dir, id);
    let built = await esbuildOnce(esbuild, { dags, buildDir, zodExternal: false });
    const deps = built.externals.size ? installedDeps() : undefined;
    for (const spec of built.externals) {
      if (dependsOnZod(packageName(spec), deps) && await reachesZod(esbuild, spec)) {
        debug(`zod stays external: '${spec}' may import its own copy`);
        built = await esbuildOnce(esbuild, { dags, buildDir, zodExternal: true });
        break;
      }
    }
    const { result, reads, dirs, configs } = built;

    // Every file esbuild read, the folders holding them, the configs that apply, and this builder itself.
    const inputs = new Map([...reads, ...configs]);
    for (const r of builderRecords()) inputs.set(r[0], r);

    // Outputs: chunks on disk; their source maps only as line tables in the manifest.
    const sources = [];
    const sourceIndex = (s) => {
      const abs = s.includes(':') && !s.startsWith('/') ? s : resolve(buildDir, s);
      let i = sources.indexOf(abs);
      if (i < 0) { i = sources.length; sources.push(abs); }
      return i;
    };
    const chunks = {};
    mkdirSync(buildDir, { recursive: true });
    for (const f of result.outputFiles) {
      if (f.path.endsWith('.map')) {
        chunks[relative(buildDir, f.path.slice(0, -4))] = lineRuns(JSON.parse(f.text), sourceIndex, (i) => sources[i].startsWith('/') && !sources[i].includes('/node_modules/'));
      } else {
        writeFileSync(f.path, f.contents);
      }
    }
    const manifest = { format: FORMAT, build: id, entry: 'entry.mjs', dags, inputs: [...inputs.values()], dirs: [...dirs.values()], sources, chunks };
    const tmp = join(dir, `manifest.json.${process.pid}.${randomBytes(4).toString('hex')}`);
    writeFileSync(tmp, JSON.stringify(manifest));
    renameSync(tmp, join(dir, 'manifest.json'));
    writeFileSync(join(dir, 'dags.json'), JSON.stringify(dags));
    rmSync(join(dir, 'failed.json'), { force: true });
    try { gc(dir, id); } catch (e) { debug(`cache gc: ${e.message}`); }
    return manifest;
  } catch (e) {
    if (e.records) e.records.inputs.push(...builderRecords());
    throw e;
  } finally {
    await esbuild.stop?.();
  }
}

const builderRecords = () => ['runtime/engine/cli/bundle-build.mjs', 'runtime/engine/cli/bundle-manifest.mjs', 'runtime/engine/cli/bundle.mjs'].map((f) => fileRecord(join(REPO_ROOT, f)));

/**
 * Cache clean-up, after each build: superseded builds of this key, and other keys unused for ORPHAN_MS (a DAG
 * module of theirs is gone: generated DAGs of tests and benches) or UNUSED_MS. Every use of a build touches its
 * folder (the .in-use-<pid> mark), and no build a live process marked is removed.
 */
function gc(dir, current) {
  const now = Date.now();
  const removable = (build, minAge) => {
    const st = statSync(build, { throwIfNoEntry: false });
    if (!st || now - st.mtimeMs < minAge) return false;
    return !readdirSync(build).some((n) => n.startsWith('.in-use-') && alive(Number(n.slice('.in-use-'.length))));
  };
  const builds = (d) => readdirSync(d).filter((n) => /^b[0-9a-z]+-[0-9a-f]+$/.test(n));
  for (const name of readdirSync(dir)) {
    if (name.startsWith('manifest.json.') && now - statSync(join(dir, name)).mtimeMs > KEEP_RECENT_MS) rmSync(join(dir, name), { force: true });
  }
  for (const b of builds(dir)) if (b !== current && removable(join(dir, b), KEEP_RECENT_MS)) rmSync(join(dir, b), { recursive: true, force: true });
  for (const key of readdirSync(CACHE_ROOT)) {
    const kdir = join(CACHE_ROOT, key);
    if (kdir === dir || !/^[0-9a-f]{20}$/.test(key)) continue;
    let dags;
    try { dags = JSON.parse(readFileSync(join(kdir, 'dags.json'), 'utf8')); } catch { dags = undefined; }
    const minAge = !dags || dags.some((f) => !existsSync(f)) ? ORPHAN_MS : UNUSED_MS;
    if (now - statSync(kdir).mtimeMs >= minAge && builds(kdir).every((b) => removable(join(kdir, b), minAge))) rmSync(kdir, { recursive: true, force: true });
  }
}

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

