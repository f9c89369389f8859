/*
 * A local Hugging Face model directory: what the pipeline needs from it (config, weights, fast tokenizer, a chat
 * template) checked up front, and the content hashes it is keyed on. Hashing a multi-GB weight file on every no-op
 * rerun would be slow, so a file's sha256 is remembered by (path, size, mtime, inode) in a small cache file.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readSync, openSync, closeSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

/** Every problem with a model dir that would stop the pipeline later; [] when usable. */
export function modelDirProblems(dir: string): string[] {
  const problems: string[] = [];
  const files = readdirSync(dir);
  if (!files.includes('config.json')) problems.push('config.json is missing');
  if (!files.some((f) => f.endsWith('.safetensors') || /^pytorch_model.*\.bin$/.test(f))) problems.push('no weights (*.safetensors)');
  if (!files.includes('tokenizer.json')) problems.push('tokenizer.json is missing (the TS tokenizer needs the fast-tokenizer file; save it with a fast tokenizer)');
  else if (!hasChatTemplate(dir)) problems.push('no chat template (neither chat_template.jinja nor chat_template in tokenizer_config.json); pass one as params.chat_template');
  if (problems.length) return problems;
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { vocab_size?: number; text_config?: { vocab_size?: number } };
  const vocab = config.vocab_size ?? config.text_config?.vocab_size;
  const tok = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as { model?: { vocab?: Record<string, number> }; added_tokens?: { id: number }[] };
  const ids = [...Object.values(tok.model?.vocab ?? {}), ...(tok.added_tokens ?? []).map((t) => t.id)];
  const size = ids.reduce((m, i) => Math.max(m, i + 1), 0);
  if (typeof vocab !== 'number') problems.push('config.json has no vocab_size');
  else if (size > vocab) problems.push(`tokenizer.json has ${size} ids but config.json vocab_size is ${vocab}: the tokenizer does not belong to this model`);
  return problems;
}

export function hasChatTemplate(dir: string): boolean {
  if (existsSync(join(dir, 'chat_template.jinja'))) return true;
  const tc = join(dir, 'tokenizer_config.json');
  if (!existsSync(tc)) return false;
  const t = (JSON.parse(readFileSync(tc, 'utf8')) as { chat_template?: unknown }).chat_template;
  return typeof t === 'string' || Array.isArray(t);
}

/** Relative paths of the files under dir (hidden entries and .git skipped), sorted. */
export function listFilesRecursive(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      // a hub snapshot's files are symlinks: follow them
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

const HASH_CACHE = () => join(process.env.AGENTFORGE_HASH_CACHE ?? join(tmpdir(), 'agentforge-hash-cache'), 'sha256.json');
let memo: Record<string, string> | null = null;

/** sha256 of a file, remembered by (real path, size, mtime, inode). */
export function fileSha256(path: string): string {
  const st = statSync(path);
  const id = `${resolve(path)}|${st.size}|${st.mtimeMs}|${st.ino}`;
  if (memo === null) {
    try { memo = JSON.parse(readFileSync(HASH_CACHE(), 'utf8')) as Record<string, string>; } catch { memo = {}; }
  }
  if (memo[id]) return memo[id];
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 22);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  memo[id] = h.digest('hex');
  try {
    mkdirSync(join(HASH_CACHE(), '..'), { recursive: true });
    const tmp = `${HASH_CACHE()}.${process.pid}`;
    writeFileSync(tmp, JSON.stringify(memo));
    renameSync(tmp, HASH_CACHE());
  } catch { /* the cache only saves time */ }
  return memo[id];
}

/** [relative path, sha256] of every file: what a local model dir is keyed on. */
export function dirHashes(dir: string): [string, string][] {
  return listFilesRecursive(dir).map((f) => [f, fileSha256(join(dir, f))]);
}
