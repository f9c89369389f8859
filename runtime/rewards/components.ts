/*
 * Reward components: small pure functions of (rollout, task) → [0, 1]. They are composed into the mixed reward
 * by runtime/rewards/mix.ts; every component is stored per rollout so `agentforge sql` can chart each one.
 * Failures are treated explicitly: an episode cut off (no stop, context overflow, tool loop, turn limit) scores 0
 * on format; an environment failure scores nothing and marks the rollout untrainable (rollout.trainable).
 */
import type { Task } from '../../schemas/task.ts';
import type { Rollout } from '../../schemas/rollout.ts';
import { finalAnswer, verifyTrajectory, verifyTrajectoryAsync } from '../worlds/verify.ts';
import { execWorldDef } from '../worlds/index.ts';

export type RewardFn = (r: Rollout, task: Task) => number;

/**
 * The world's goal verifier: final state, required outputs, refusal policy (runtime/worlds/verify.ts). In the
 * program-running worlds (code, repo) it is the share of hidden tests passed, proven in the sandbox by the harness:
 * withExecOutcome computes it after the episode (asynchronously) and this reads it back.
 */
export const outcome: RewardFn = (r, task) =>
  (execWorldDef(task.world) ? r.reward_components[EXEC_SCORE] ?? 0 : verifyTrajectory(r, task).pass ? 1 : 0);

/** Where withExecOutcome leaves the hidden-test score for `outcome` (scoreRollout then replaces the components). */
export const EXEC_SCORE = 'hidden_tests';

/** Runs the hidden tests of a code/repo rollout in the sandbox and records the score; other worlds pass through. */
export async function withExecOutcome<R extends Rollout>(r: R, task: Task, signal?: AbortSignal): Promise<R> {
  if (!execWorldDef(task.world) || !r.trainable) return r;
  const v = await verifyTrajectoryAsync(r, task, signal);
  return { ...r, reward_components: { ...r.reward_components, [EXEC_SCORE]: v.score } };
}

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

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/**
 * Partial credit for the required outputs: per output, 1 − edit distance / length to the closest word of the final
 * answer (0 without an answer), averaged; 1 when the task requires none. Outcome scores the exact answer; this
 * ranks near misses (a balance answered 861.00 for 866.00 beats 15.00), so a group whose samples all fail on a
 * copied number still has a direction to learn in.
 */
export const answer: RewardFn = (r, task) => {
  const outs = task.goal.required_outputs;
  if (!outs.length) return 1;
  const text = finalAnswer(r.messages);
  const words = text.split(/[\s,;:!?()"'`]+/).map((w) => w.replace(/\.+$/, '')).filter(Boolean);
  const closeness = (o: string) => {
    if (text.includes(o)) return 1;
    return words.reduce((best, w) => Math.max(best, 1 - editDistance(o, w) / Math.max(o.length, w.length)), 0);
  };
  return outs.reduce((s, o) => s + closeness(o), 0) / outs.length;
};

export const COMPONENTS = { outcome, format, validity, efficiency, answer } as const;
export type ComponentName = keyof typeof COMPONENTS;
