/*
 * load-model: the short form of resolve-model for a model already on this machine — `source` is a Hugging Face dir,
 * a repo id found in the standard HF cache (`$HF_HUB_CACHE`, default `$HF_HOME/hub`: `models--org--name/snapshots/
 * <rev>`; download it first with `hf download org/name`), or a .gguf file. It never touches the network; the hub
 * (download, revision → commit) is resolve-model's `base: {kind: 'hub'}`. Both go through runtime/models/resolve.ts:
 * the same checks (files, tokenizer vs vocabulary, chat template, an architecture the exporter supports) before
 * anything runs, the same key (the resolved files' hashes, the GGUF's hash), and the same output, a Hugging Face
 * dir (a GGUF dequantized by the runtime node). One difference: a dir without a chat template gets the project's
 * template (runtime/agent/chat-template.ts), written into the artifact as chat_template.jinja and logged, as load-model
 * always did for the tiny models the tests build; resolve-model refuses such a dir.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { CHAT_TEMPLATE } from '../runtime/agent/chat-template.ts';
import { checkTemplateTools, loadChatTokenizer } from '../runtime/agent/tokenize.ts';
import { model, operator } from '../runtime/engine/operator.ts';
import { forwardEvents, nodeCode } from '../runtime/node/bridge.ts';
import { hasChatTemplate } from '../runtime/models/local.ts';
import { materialize, resolveBaseKey, type BaseSpec, type TemplateCheck, type TemplateTextCheck } from '../runtime/models/resolve.ts';

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

/** The spec resolve.ts resolves: a .gguf file, else a local dir or the cached snapshot of `org/name`. */
export function sourceSpec(source: string, revision: string, env: NodeJS.ProcessEnv = process.env): BaseSpec {
  if (/\.gguf$/i.test(source)) return { kind: 'gguf', file: source };
  return { kind: 'path', dir: resolveModelDir(source, revision, env) };
}

/** The template param, or the project's for a dir that has none. */
function template(spec: BaseSpec, given: string | null): string | null {
  if (given !== null || spec.kind !== 'path' || !existsSync(spec.dir) || hasChatTemplate(spec.dir)) return given;
  return CHAT_TEMPLATE;
}

const checkTemplate: TemplateCheck = (dir, chatTemplate) => { loadChatTokenizer(dir, { chatTemplate: chatTemplate ?? undefined }); };
const checkTemplateText: TemplateTextCheck = (source, where, override) => checkTemplateTools(source, where, { override });

export const loadModel = operator({
  name: 'load-model',
  version: 3,
  description: 'a model on this machine (HF dir | repo id in the HF cache | GGUF) checked and stored as a Hugging Face dir; keyed on its content',
  params: z.object({
    source: z.string().min(1),
    revision: z.string().default('main'),
    /** Jinja source replacing the model's own template (written as chat_template.jinja into the artifact). */
    chat_template: z.string().min(1).nullable().default(null),
  }),
  inputs: {},
  output: model(),
  env: ['HF_HOME', 'HF_HUB_CACHE'],
  codeDeps: nodeCode('commands/convert_gguf.py'),
  fingerprint(params) {
    try {
      const spec = sourceSpec(params.source, params.revision);
      return resolveBaseKey(spec, template(spec, params.chat_template), { checkTemplate, checkTemplateText });
    } catch (e) {
      throw new Error(`load-model (${params.source}): ${(e as Error).message}`);
    }
  },
  async run({ params, out, ctx }) {
    const spec = sourceSpec(params.source, params.revision);
    const chatTemplate = template(spec, params.chat_template);
    if (chatTemplate !== params.chat_template) ctx.log(`load-model: ${params.source} has no chat template; the project's template (runtime/agent/chat-template.ts) is written into the artifact`);
    const { source, log } = await materialize(spec, chatTemplate, out.dir,
      { checkTemplate, checkTemplateText, node: { signal: ctx.signal, onEvent: forwardEvents(ctx) } });
    for (const line of log) ctx.log(`load-model: ${line}`);
    ctx.log(`load-model: ${params.source} (${String(source.kind)})`);
  },
});
