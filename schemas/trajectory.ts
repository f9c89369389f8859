import { z } from 'zod';
import { Message } from './message.ts';
import { ToolSpec } from './tool.ts';

export const FinishReason = z.enum([
  'answered', 'refused', 'max_turns', 'max_tokens', 'context_overflow', 'tool_loop', 'error', 'user_stop',
]);
export type FinishReason = z.infer<typeof FinishReason>;

export const TurnError = z.object({
  turn: z.number().int(),
  kind: z.string(),
  message: z.string(),
});
export type TurnError = z.infer<typeof TurnError>;

export const Trajectory = z.object({
  id: z.string(),
  task_id: z.string(),
  world: z.string(),
  messages: z.array(Message),
  tools: z.array(ToolSpec),
  source: z.string(),
  teacher: z.string(),
  seed: z.number().int(),
  policy_version: z.number().int().default(0),
  reward: z.number().nullable().default(null),
  reward_components: z.record(z.string(), z.number()).default({}),
  turns: z.number().int(),
  finish_reason: FinishReason,
  errors: z.array(TurnError).default([]),
  difficulty: z.number().int().default(1),
  split: z.enum(['train', 'heldout']).default('train'),
  /** The repo world: the episode's change to the repository as a unified diff (null elsewhere and in older rows). */
  patch: z.string().optional(),
});
export type Trajectory = z.infer<typeof Trajectory>;

export const Verdict = z.object({
  trajectory_id: z.string(),
  task_id: z.string(),
  world: z.string(),
  pass: z.boolean(),
  reasons: z.array(z.string()),
  final_state_hash: z.string().nullable(),
});
export type Verdict = z.infer<typeof Verdict>;
