/*
 * Test-time scaling over any model's evaluation rollouts (N samples per task at temperature > 0, from `evaluate`):
 * pick one sample of the first n (n = 1, 2, 4 … N) per task and score the pick with the verifier's success.
 *  - best-of-N with a verifier (Cobbe et al. 2021): the world's own verifier picks (a successful sample if any,
 *    else the highest reward); an oracle upper bound that needs the gold.
 *  - model-only selectors, no gold: the policy's mean token logprob over what it generated; majority vote over the
 *    sequences of tool calls; self-consistency (Wang et al. 2022): majority vote over the final answers.
 * Votes break ties by the cluster's mean logprob, then by sample index, so every result is deterministic.
 * Using the first n samples (not random subsets) keeps N = 1 equal to a plain sample and the curves nested.
 */
import { z } from 'zod';
import type { EvalRollout } from '../../schemas/eval.ts';
import { groupBy } from '../engine/collections.ts';

export const TtsRow = z.object({
  model: z.string(),
  world: z.string(),
  /** best-of-n/verifier, best-of-n/logprob, best-of-n/vote-calls, self-consistency/answer … */
  strategy: z.string(),
  n: z.number().int(),
  tasks: z.number().int(),
  /** Share of tasks whose picked sample the verifier passed. */
  success: z.number(),
  mean_reward: z.number(),
});
export type TtsRow = z.infer<typeof TtsRow>;

export const Selector = z.enum(['verifier', 'logprob', 'vote-calls', 'vote-answer']);
export type Selector = z.infer<typeof Selector>;

/** Mean behaviour logprob of the tokens the policy generated (loss_mask = 1). */
export function meanLogprob(r: EvalRollout): number {
  let s = 0, n = 0;
  for (let i = 0; i < r.loss_mask.length; i++) if (r.loss_mask[i]) { s += r.behaviour_logprobs[i] ?? 0; n++; }
  return n ? s / n : -Infinity;
}

/** The last assistant message's text, normalised (case, spaces, trailing punctuation). */
export function finalAnswer(r: EvalRollout): string {
  const last = [...r.messages].reverse().find((m) => m.role === 'assistant' && !m.tool_calls.length);
  return (last?.content ?? '').toLowerCase().replace(/\s+/g, ' ').replace(/[.!\s]+$/, '').trim();
}

/** Every tool call of the episode, in order, with canonical (key-sorted) arguments. */
export function callSequence(r: EvalRollout): string {
  const canon = (v: unknown): unknown => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, canon(x)])) : v);
  return JSON.stringify(r.messages.flatMap((m) => m.tool_calls.map((c) => [c.name, canon(c.arguments)])));
}

function vote(samples: EvalRollout[], key: (r: EvalRollout) => string): EvalRollout {
  const clusters = [...groupBy(samples, key).values()];
  const score = (c: EvalRollout[]) => c.reduce((s, r) => s + meanLogprob(r), 0) / c.length;
  clusters.sort((a, b) => b.length - a.length || score(b) - score(a) || a[0].sample - b[0].sample);
  return byLogprob(clusters[0]);
}

function byLogprob(samples: EvalRollout[]): EvalRollout {
  return samples.reduce((best, r) => (meanLogprob(r) > meanLogprob(best) ? r : best));
}

export function select(samples: EvalRollout[], s: Selector): EvalRollout {
  switch (s) {
    case 'verifier': return samples.find((r) => r.success) ?? samples.reduce((b, r) => ((r.reward ?? 0) > (b.reward ?? 0) ? r : b));
    case 'logprob': return byLogprob(samples);
    case 'vote-calls': return vote(samples, callSequence);
    case 'vote-answer': return vote(samples, finalAnswer);
  }
}

/**
 * Greedy decoding as a flat reference line: per (model, world) its success, repeated at every n the sampled rows
 * have, under strategy 'greedy'.
 */
export function greedyRows(greedy: EvalRollout[], sampled: TtsRow[]): TtsRow[] {
  const out: TtsRow[] = [];
  for (const [model, byModel] of groupBy(greedy, (r) => r.model)) {
    for (const [world, rs] of [...groupBy(byModel, (r) => r.world)].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const tasks = [...groupBy(rs, (r) => r.task_id).values()].map((g) => g.reduce((a, b) => (a.sample <= b.sample ? a : b)));
      const ns = [...new Set(sampled.filter((r) => r.model === model && r.world === world).map((r) => r.n))];
      for (const n of ns.length ? ns : [1]) {
        out.push({ model, world, strategy: 'greedy', n, tasks: tasks.length, success: tasks.filter((t) => t.success).length / tasks.length,
          mean_reward: tasks.reduce((s, t) => s + (t.reward ?? 0), 0) / tasks.length });
      }
    }
  }
  return out;
}

/** Sample counts 1, 2, 4 … up to max, and max itself. */
export function powersUpTo(max: number): number[] {
  const out: number[] = [];
  for (let n = 1; n < max; n *= 2) out.push(n);
  out.push(max);
  return out;
}

/**
 * One row per (model, world, selector, n). Tasks with fewer than max(ns) samples are refused with the task named:
 * evaluate them with `samples` ≥ N.
 */
export function scaleTestTime(rows: EvalRollout[], selectors: Selector[], ns: number[] | null, prefix: string, where: string): TtsRow[] {
  const out: TtsRow[] = [];
  for (const [model, byModel] of groupBy(rows, (r) => r.model)) {
    for (const [world, rs] of [...groupBy(byModel, (r) => r.world)].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const tasks = [...groupBy(rs, (r) => r.task_id).values()].map((g) => [...g].sort((a, b) => a.sample - b.sample));
      const have = Math.min(...tasks.map((t) => t.length));
      const sizes = ns ?? powersUpTo(have);
      const short = tasks.find((t) => t.length < Math.max(...sizes));
      if (short) {
        throw new Error(`${where}: task ${short[0].task_id} of model ${model} has ${short.length} samples but N = ${Math.max(...sizes)} was asked; `
          + 'evaluate with samples ≥ N (and temperature > 0) or lower n');
      }
      for (const sel of selectors) {
        for (const n of sizes) {
          const picks = tasks.map((t) => select(t.slice(0, n), sel));
          out.push({ model, world, strategy: `${prefix}/${sel}`, n, tasks: tasks.length,
            success: picks.filter((p) => p.success).length / picks.length, mean_reward: picks.reduce((s, p) => s + (p.reward ?? 0), 0) / picks.length });
        }
      }
    }
  }
  return out;
}
