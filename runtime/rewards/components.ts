/*
 * Reward components: small pure functions of (rollout, task) → [0, 1]. They are composed into the mixed reward
 * by runtime/rewards/mix.ts; every component is stored per rollout so `agentforge sql` can chart each one.
 * Failures are treated explicitly: an episode cut off (no stop, context overflow, tool loop, turn limit) scores 0
 * on format; an environment failure scores nothing and marks the rollout untrainable (rollout.trainable).
 */
import type { Task } from '../../schemas/task.ts';
import type { Rollout } from '../../schemas/rollout.ts';
import { verifyTrajectory } from '../synth/verify.ts';

export type RewardFn = (r: Rollout, task: Task) => number;

/** The world's goal verifier: final state, required outputs, refusal policy (runtime/synth/verify.ts). */
export const outcome: RewardFn = (r, task) => (verifyTrajectory(r, task).pass ? 1 : 0);

const CUT_OFF = new Set(['max_tokens', 'context_overflow', 'tool_loop', 'max_turns', 'error']);
const PARSE = (kind: string) => kind.startsWith('parse_') || kind === 'empty_message' || kind === 'no_stop';

/** Well-formed turns (calls parse, turns stop) and a final text answer: share of clean assistant turns, 0 if cut off. */
export const format: RewardFn = (r) => {
  if (CUT_OFF.has(r.finish_reason)) return 0;
  const turns = Math.max(1, r.turns);
  const bad = new Set(r.errors.filter((e) => PARSE(e.kind)).map((e) => e.turn)).size;
  return Math.max(0, (turns - bad) / turns);
};

/** Share of tool calls that the world accepted (parsed, known tool, valid arguments); 1 with no calls. */
export const validity: RewardFn = (r) => {
  const calls = r.messages.reduce((s, m) => s + m.tool_calls.length, 0);
  if (calls === 0) return 1;
  const bad = r.errors.filter((e) => e.kind === 'parse_invalid_json' || e.kind === 'parse_not_an_object' || e.kind === 'parse_missing_name'
    || e.kind === 'parse_bad_arguments' || e.kind === 'parse_unclosed_tool_call' || e.kind === 'tool_unknown_tool' || e.kind === 'tool_invalid_args').length;
  return Math.max(0, (calls - Math.min(bad, calls)) / calls);
};

/** Calls and tokens beyond what the gold plan needs cost reward: gold calls / calls made, scaled by a length term. */
export const efficiency: RewardFn = (r, task) => {
  if (CUT_OFF.has(r.finish_reason)) return 0;
  const calls = r.messages.reduce((s, m) => s + m.tool_calls.length, 0);
  const gold = task.goal.gold_actions.length;
  const callTerm = calls <= gold ? 1 : gold / calls;
  // ~48 generated tokens per gold step is generous for the built-in worlds' turns
  const budget = 48 * (gold + 2);
  const lengthTerm = r.completion_tokens <= budget ? 1 : budget / r.completion_tokens;
  return callTerm * lengthTerm;
};

export const COMPONENTS = { outcome, format, validity, efficiency } as const;
export type ComponentName = keyof typeof COMPONENTS;
