import { z } from 'zod';

export const Split = z.enum(['train', 'heldout']);
export type Split = z.infer<typeof Split>;

/** What a successful episode must achieve: the world's state hash after the gold plan, and strings the agent must say. */
export const Goal = z.object({
  final_state_hash: z.string(),
  required_outputs: z.array(z.string()).default([]),
  /** The gold action sequence (tool name + JSON arguments); the scripted teacher and verifiers use it. */
  gold_actions: z.array(z.object({ name: z.string(), arguments: z.record(z.string(), z.unknown()) })).default([]),
  /** The policy requires the agent to refuse; no state-changing action may happen. */
  must_refuse: z.boolean().default(false),
  /** A correct final answer (contains every required output); the scripted teacher says it. */
  reference_answer: z.string().optional(),
});
export type Goal = z.infer<typeof Goal>;

export const Task = z.object({
  id: z.string(),
  world: z.string(),
  instruction: z.string(),
  /** Facts the user simulator reveals only when asked (key → value). */
  hidden_facts: z.record(z.string(), z.string()).default({}),
  seed: z.number().int(),
  goal: Goal,
  difficulty: z.number().int().min(1),
  split: Split,
  tags: z.array(z.string()).default([]),
  /**
   * The instruction template: world/kind, plus ":variant" (e.g. "retail/cancel_order:ask"). Absent for worlds
   * without templates (code, repo, τ-bench) and in older rows.
   */
  template: z.string().optional(),
  /**
   * Whether the train split of the same world and difficulty range can contain this template. False for the
   * held-out probe: templates that exist only in held-out and tasks longer than training's max difficulty.
   */
  template_seen: z.boolean().optional(),
});
export type Task = z.infer<typeof Task>;
