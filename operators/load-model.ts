/*
 * load-model: brings an existing Hugging Face model into the store: a local directory, or a repo id resolved in
 * the standard HF cache layout `$HF_HUB_CACHE (default $HF_HOME/hub, ~/.cache/huggingface/hub)/models--org--name/
 * snapshots/<rev>` (download it first with `hf download org/name`). Checks the files the pipeline needs and that
 * the tokenizer fits the model's vocabulary, then copies the directory (following the cache's symlinks).
 */
import { cpSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { model, operator } from '../runtime/engine/operator.ts';

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  return join(env.HF_HOME ?? join(homedir(), '.cache', 'huggingface'), 'hub');
}

/** A local dir as is; `org/name` through the hub cache's refs/<revision> (or a snapshot hash given directly). */
export function resolveModelDir(source: string, revision: string, env: NodeJS.ProcessEnv = process.env): string {
  const local = resolve(source);
  if (existsSync(local) && statSync(local).isDirectory()) return local;
  if (!/^[\w.-]+\/[\w.-]+$/.test(source)) {
    throw new Error(`load-model: '${source}' is neither an existing directory nor a Hugging Face repo id (org/name)`);
  }
  const repoDir = join(hubCacheDir(env), `models--${source.replace('/', '--')}`);
  const fix = `download it with \`hf download ${source}\` (or \`huggingface-cli download ${source}\`), or set HF_HOME / HF_HUB_CACHE to the cache that holds it`;
  if (!existsSync(repoDir)) throw new Error(`load-model: ${source} is not in the Hugging Face cache (${repoDir} missing); ${fix}`);
  const ref = join(repoDir, 'refs', revision);
  const commit = existsSync(ref) ? readFileSync(ref, 'utf8').trim() : revision;
  const snap = join(repoDir, 'snapshots', commit);
  if (!existsSync(snap)) {
    const have = existsSync(join(repoDir, 'snapshots')) ? readdirSync(join(repoDir, 'snapshots')).join(', ') : 'none';
    throw new Error(`load-model: revision '${revision}' of ${source} is not in the cache (snapshots: ${have}); ${fix}`);
  }
  return snap;
}

/** Every problem with a model dir, [] when it is usable. */
export function checkModelDir(dir: string): string[] {
  const problems: string[] = [];
  const files = readdirSync(dir);
  if (!files.includes('config.json')) problems.push(`${dir}/config.json is missing`);
  if (!files.some((f) => f.endsWith('.safetensors') || /^pytorch_model.*\.bin$/.test(f))) problems.push(`${dir} has no weights (*.safetensors)`);
  if (!files.includes('tokenizer.json')) problems.push(`${dir}/tokenizer.json is missing (the TS tokenizer needs the fast-tokenizer file)`);
  if (problems.length) return problems;
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { vocab_size?: number; text_config?: { vocab_size?: number } };
  const vocab = config.vocab_size ?? config.text_config?.vocab_size;
  const tok = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as { model?: { vocab?: Record<string, number> }; added_tokens?: { id: number }[] };
  const ids = [...Object.values(tok.model?.vocab ?? {}), ...(tok.added_tokens ?? []).map((t) => t.id)];
  const size = ids.length ? Math.max(...ids) + 1 : 0;
  if (typeof vocab !== 'number') problems.push(`${dir}/config.json has no vocab_size`);
  else if (size > vocab) problems.push(`${dir}: tokenizer.json has ${size} ids but config.json vocab_size is ${vocab}; the tokenizer does not belong to this model`);
  return problems;
}

/** Names, sizes and mtimes of the resolved dir's files: a changed local model reruns the node. */
function dirFingerprint(dir: string): [string, number, number][] {
  return readdirSync(dir).filter((f) => !f.startsWith('.')).sort().map((f) => {
    const st = statSync(join(dir, f));
    return [f, st.size, Math.floor(st.mtimeMs)];
  });
}

export const loadModel = operator({
  name: 'load-model',
  version: 2,
  description: 'a local HF model directory or a repo id from the HF cache, checked and copied into the store',
  params: z.object({ source: z.string().min(1), revision: z.string().default('main') }),
  inputs: {},
  output: model(),
  env: ['HF_HOME', 'HF_HUB_CACHE'],
  fingerprint(params) {
    try { return dirFingerprint(resolveModelDir(params.source, params.revision)); } catch { return 'unresolved'; }
  },
  async run({ params, out, ctx }) {
    const dir = resolveModelDir(params.source, params.revision);
    const problems = checkModelDir(dir);
    if (problems.length) throw new Error(`load-model: ${params.source} is not usable:\n  - ${problems.join('\n  - ')}`);
    const tc = join(dir, 'tokenizer_config.json');
    const hasTemplate = existsSync(join(dir, 'chat_template.jinja')) ||
      (existsSync(tc) && typeof (JSON.parse(readFileSync(tc, 'utf8')) as { chat_template?: unknown }).chat_template === 'string');
    if (!hasTemplate) ctx.log(`load-model: ${params.source} has no chat template; the pipeline's CHAT_TEMPLATE will be used`);
    // dereference: hub snapshots are symlinks into blobs/, and the store must own real files
    cpSync(dir, out.dir, { recursive: true, dereference: true, filter: (src) => !src.includes('/.git') });
    ctx.log(`load-model: ${params.source} from ${dir}`);
  },
});
