/*
 * resolve-model: the recipe's `base` model — a local Hugging Face dir, a hub repo + revision (downloaded through
 * @huggingface/hub into the standard HF cache, shared with Python tools), or a GGUF file — checked and brought into
 * the store. Keyed on what it resolved: the dir's file hashes, the hub commit sha (a moved branch reruns), the GGUF's
 * hash. Bad input (no such repo or revision, a gated repo without HF_TOKEN, no tokenizer or template, a template
 * that drops tools, an unknown GGUF quantization) fails while keys are computed, before any node runs.
 * Whatever the source, the artifact is a Hugging Face dir: a GGUF is dequantized once by the runtime node's
 * convert-gguf (safetensors + config + tokenizer + its template as chat_template.jinja). An architecture the ONNX
 * exporter does not support is refused with the rest. load-model is the same path for a string `source` already on
 * this machine (dir, HF cache, .gguf), without the network.
 * Env: HF_ENDPOINT (in the key), HF_TOKEN (never in the key), HF_HOME / HF_HUB_CACHE (the cache), HF_HUB_OFFLINE=1
 * (revisions from the cache's refs, no request); an unreachable hub falls back to the cached commit as well.
 */
import { z } from 'zod';
import { model, operator } from '../runtime/engine/operator.ts';
import { forwardEvents, nodeCode } from '../runtime/node/bridge.ts';
import { checkTemplateTools, loadChatTokenizer } from '../runtime/agent/tokenize.ts';
import { BaseSpec, describeBase, materialize, resolveBaseKey, type TemplateCheck, type TemplateTextCheck } from '../runtime/models/resolve.ts';

export const ResolveModelParams = z.object({
  base: BaseSpec,
  /** Jinja source replacing the model's own template (written as chat_template.jinja into the artifact). */
  chat_template: z.string().min(1).nullable().default(null),
});

const checkTemplate: TemplateCheck = (dir, chatTemplate) => { loadChatTokenizer(dir, { chatTemplate: chatTemplate ?? undefined }); };
const checkTemplateText: TemplateTextCheck = (source, where, override) => checkTemplateTools(source, where, { override });
const checks = { checkTemplate, checkTemplateText };

export const resolveModel = operator({
  name: 'resolve-model',
  version: 2,
  description: 'a base model (local HF dir | hub repo@revision | GGUF) resolved, checked and stored as a Hugging Face dir; keyed on its content or commit',
  params: ResolveModelParams,
  inputs: {},
  output: model(),
  env: ['HF_ENDPOINT'],
  codeDeps: nodeCode('commands/convert_gguf.py'),
  fingerprint(params) {
    try {
      return resolveBaseKey(params.base, params.chat_template, checks);
    } catch (e) {
      throw new Error(`resolve-model (${describeBase(params.base)}): ${(e as Error).message}`);
    }
  },
  async run({ params, out, ctx }) {
    ctx.log(`resolve-model: ${describeBase(params.base)}`);
    const { source, log } = await materialize(params.base, params.chat_template, out.dir,
      { ...checks, node: { signal: ctx.signal, onEvent: forwardEvents(ctx) } });
    for (const line of log) ctx.log(`resolve-model: ${line}`);
    if (typeof source.sha === 'string') ctx.log(`resolve-model: commit ${source.sha}`);
  },
});
