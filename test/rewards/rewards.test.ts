/*
 * Reward components on hand-made rollouts of a real retail task (verified by the real verifier): each component
 * in isolation, failures treated explicitly, and the per-world weighted mix.
 */
import { describe, expect, it } from 'vitest';
import { answer, efficiency, format, outcome, validity } from '../../runtime/rewards/components.ts';
import { RewardParams, scoreRollout, weightsFor } from '../../runtime/rewards/mix.ts';
import { renderToolResult } from '../../runtime/worlds/base.ts';
import { getWorld } from '../../runtime/worlds/index.ts';
import { systemPrompt } from '../../runtime/agent/loop.ts';
import type { Message, ToolCall } from '../../schemas/message.ts';
import type { Rollout } from '../../schemas/rollout.ts';
import type { TurnError } from '../../schemas/trajectory.ts';
import { statusTasks } from '../rollout/helpers.ts';

const task = statusTasks(1)[0];
const orderId = task.goal.gold_actions[0].arguments.order_id as string;
const m = (role: Message['role'], content: string, tool_calls: ToolCall[] = [], extra: Partial<Message> = {}): Message =>
  ({ role, content, tool_calls, tool_call_id: null, name: null, ...extra });

function rollout(calls: Array<{ name: string; args: Record<string, unknown> | null }>, answer: string, o: Partial<Rollout> = {}): Rollout {
  const w = getWorld('retail');
  w.reset(task);
  const messages: Message[] = [m('system', systemPrompt(w)), m('user', task.instruction)];
  calls.forEach((c, i) => {
    const id = `call_${i}`;
    messages.push(m('assistant', '', [{ id, name: c.name, arguments: c.args, raw: JSON.stringify(c.args) }]));
    const text = c.args === null ? '{"error":"invalid_tool_call"}' : renderToolResult(w.call(c.name, c.args));
    messages.push(m('tool', text, [], { tool_call_id: id, name: c.name }));
  });
  messages.push(m('assistant', answer));
  return {
    id: 'r', task_id: task.id, world: 'retail', messages, tools: w.toolSpecs(), source: 'rollout', teacher: 'policy', seed: 0,
    policy_version: 0, reward: null, reward_components: {}, turns: calls.length + 1, finish_reason: 'answered', errors: [],
    difficulty: 1, split: 'train', group_id: 'g', sample: 0, step: 0, input_ids: [], loss_mask: [], behaviour_logprobs: [],
    prompt_tokens: 0, completion_tokens: 30, timings: [], error_counts: {}, success: null, trainable: true, ...o,
  };
}
const gold = () => rollout([{ name: 'get_order', args: { order_id: orderId } }], task.goal.reference_answer!);
const err = (turn: number, kind: string): TurnError => ({ turn, kind, message: kind });

describe('reward components', () => {
  it('outcome is the verifier: gold passes, a wrong answer or a wrong call fails', () => {
    expect(outcome(gold(), task)).toBe(1);
    expect(outcome(rollout([{ name: 'get_order', args: { order_id: orderId } }], 'Order is fine.'), task)).toBe(0);
    expect(outcome(rollout([{ name: 'get_order', args: { order_id: 'O-1' } }], task.goal.reference_answer!), task)).toBe(0);
  });

  it('format: share of clean turns, 0 when the episode was cut off', () => {
    expect(format(gold(), task)).toBe(1);
    expect(format({ ...gold(), errors: [err(0, 'parse_invalid_json')] }, task)).toBe(0.5);
    for (const f of ['max_tokens', 'context_overflow', 'tool_loop', 'max_turns', 'error'] as const) {
      expect(format({ ...gold(), finish_reason: f }, task)).toBe(0);
    }
  });

  it('validity: share of accepted calls; 1 without calls', () => {
    expect(validity(gold(), task)).toBe(1);
    expect(validity(rollout([], 'hi'), task)).toBe(1);
    const two = rollout([{ name: 'nope', args: {} }, { name: 'get_order', args: { order_id: orderId } }], 'x', { errors: [err(0, 'tool_unknown_tool')] });
    expect(validity(two, task)).toBe(0.5);
  });

  it('efficiency: extra calls and long completions cost, cut-off episodes get 0', () => {
    expect(efficiency(gold(), task)).toBe(1);
    const extra = rollout([{ name: 'get_order', args: { order_id: orderId } }, { name: 'get_order', args: { order_id: orderId } }], 'x');
    expect(efficiency(extra, task)).toBe(0.5);
    expect(efficiency({ ...gold(), completion_tokens: 288 }, task)).toBeCloseTo(0.5);
    expect(efficiency({ ...gold(), finish_reason: 'tool_loop' }, task)).toBe(0);
  });
});

describe('answer (partial credit)', () => {
  const withOutputs = (outs: string[]) => ({ ...task, goal: { ...task.goal, required_outputs: outs } });

  it('grades how close the final answer comes to each required output', () => {
    const t = withOutputs(['866.00']);
    expect(answer(rollout([], 'Account A-1 has a balance of 866.00.'), t)).toBe(1);
    expect(answer(rollout([], 'Account A-1 has a balance of 861.00.'), t)).toBeCloseTo(5 / 6);
    expect(answer(rollout([], 'Account A-1 has a balance of 15766.00.'), t)).toBeCloseTo(1 - 3 / 8);
    expect(answer(rollout([], 'I cannot help.'), t)).toBeLessThan(0.5);
    // the mean over outputs; none required is full credit; a last message that calls a tool is no answer
    expect(answer(rollout([], 'It costs 12.00 and is pendin.'), withOutputs(['12.00', 'pending']))).toBeCloseTo((1 + 6 / 7) / 2);
    expect(answer(rollout([], 'whatever'), withOutputs([]))).toBe(1);
    const calling = rollout([{ name: 'get_order', args: { order_id: orderId } }], '866.00');
    calling.messages.pop();
    expect(answer(calling, t)).toBe(0);
  });
});

describe('mixed reward', () => {
  it('weights the components, per world, and stores each of them', () => {
    const p = RewardParams.parse({ worlds: { retail: { outcome: 2, efficiency: 0 } } });
    expect(weightsFor(p, 'retail')).toEqual({ outcome: 2, format: 0.1, validity: 0.1, efficiency: 0, answer: 0 });
    expect(weightsFor(p, 'bank')).toEqual({ outcome: 1, format: 0.1, validity: 0.1, efficiency: 0.05, answer: 0 });
    const s = scoreRollout(gold(), task, p);
    expect(s.reward_components).toEqual({ outcome: 1, format: 1, validity: 1, efficiency: 1, answer: 1 });
    expect(s.reward).toBeCloseTo(2.2);
    const near = scoreRollout(rollout([{ name: 'get_order', args: { order_id: orderId } }], 'x'), task, RewardParams.parse({ default: { answer: 0.5 } }));
    expect(near.reward).toBeCloseTo(0.1 + 0.1 + 0.05 + 0.5 * near.reward_components.answer);
    expect(s.success).toBe(true);
  });

  it('an environment failure scores 0 on every component', () => {
    const s = scoreRollout({ ...gold(), trainable: false, finish_reason: 'error' }, task, RewardParams.parse({}));
    expect(s.reward).toBe(0);
    expect(s.success).toBe(false);
    expect(Object.values(s.reward_components)).toEqual([0, 0, 0, 0, 0]);
  });
});
