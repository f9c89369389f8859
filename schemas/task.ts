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
});
export type Task = z.infer<typeof Task>;
