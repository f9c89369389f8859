/*
 * What the CLI bundle's cache records and where it lives, shared by the launcher (bundle.mjs: is the cached bundle
 * still fresh?) and the builder (bundle-build.mjs: what to record), so neither imports the other's module.
 * Plain JavaScript: it runs before any TypeScript loader exists.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI_ENTRY = join(REPO_ROOT, 'runtime/engine/cli/main.ts');
export const CACHE_ROOT = join(REPO_ROOT, 'node_modules/.cache/agentforge/cli');
/** Bump when the bundle layout or the manifest changes. */
export const FORMAT = 1;
export const debug = (msg) => { if (process.env.AGENTFORGE_BUNDLE_DEBUG) process.stderr.write(`agentforge bundle: ${msg}\n`); };

export const hashFile = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');
export const hashDir = (p) => createHash('sha256').update(readdirSync(p).sort().join('\0')).digest('hex');
export const statSig = (st) => [st.size, st.mtimeMs, st.ctimeMs, st.ino];

/** True while every recorded input is as it was when the bundle was built. */
export function isFresh(manifest) {
  for (const [p, sig, hash] of manifest.inputs) {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st || !st.isFile() || !sameSig(statSig(st), sig)) return debug(`changed: ${p}`), false;
    if (hash && hashFile(p) !== hash) return debug(`changed (content): ${p}`), false;
  }
  for (const [p, sig, hash] of manifest.dirs) {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st || !st.isDirectory() || !sameSig(statSig(st), sig)) return debug(`folder changed: ${p}`), false;
    if (hash && hashDir(p) !== hash) return debug(`folder changed (entries): ${p}`), false;
  }
  return true;
}
const sameSig = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

