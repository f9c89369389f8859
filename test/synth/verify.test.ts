import { describe, expect, it } from 'vitest';
import type { Task } from '../../schemas/task.ts';
import type { Trajectory } from '../../schemas/trajectory.ts';
import { makeTasks } from '../../runtime/worlds/index.ts';
import { verifyTrajectory } from '../../runtime/worlds/verify.ts';
import { clone, episode } from './helpers.ts';

const pool = new Map<string, Task[]>();
const pick = (world: string, f: (t: Task) => boolean): Task => {
  if (!pool.has(world)) pool.set(world, makeTasks(world, { seed: 8, n: 300 }));
  return pool.get(world)!.find(f)!;
};
const gated = pick('retail', (t) => t.tags.includes('kind:cancel_order') && t.tags.includes('ask_user'));
const refusal = pick('bank', (t) => t.goal.must_refuse);
const lookup = pick('travel', (t) => t.tags.includes('kind:flight_price'));
const why = (tr: Trajectory, t: Task) => verifyTrajectory(tr, t).reasons.join('\n');
const callIndex = (tr: Trajectory, name: string) => tr.messages.findIndex((m) => m.tool_calls.some((c) => c.name === name));

describe('verifyTrajectory', () => {
  it('passes the gold trajectories', async () => {
    for (const t of [gated, refusal, lookup]) expect(verifyTrajectory(await episode(t), t)).toMatchObject({ pass: true, reasons: [] });
  });

  it('fails a changed argument (state_hash_mismatch and tool_result_mismatch)', async () => {
    const tr = clone(await episode(gated));
    const c = tr.messages[callIndex(tr, 'cancel_order')].tool_calls[0];
    c.arguments = { order_id: 'O-0000' };
    expect(why(tr, gated)).toMatch(/tool_error: not_found: cancel_order[\s\S]*tool_result_mismatch[\s\S]*state_hash_mismatch/);
  });

  it('fails when the user confirmation is removed (the replayed call violates policy)', async () => {
    const tr = clone(await episode(gated));
    const i = tr.messages.findIndex((m) => m.content === 'Yes, I confirm.');
    tr.messages[i].content = 'hmm';
    expect(why(tr, gated)).toMatch(/tool_error: policy: cancel_order: cancel_order needs the user's explicit confirmation/);
  });

  it('fails a fabricated tool result', async () => {
    const tr = clone(await episode(lookup));
    const m = tr.messages.find((x) => x.role === 'tool')!;
    m.content = m.content.replace(/"price":\d+/, '"price":1');
    expect(why(tr, lookup)).toMatch(/^tool_result_mismatch: get_flight/m);
  });

  it('fails a premature or wrong final answer (missing_output) and unfinished episodes', async () => {
    const tr = clone(await episode(lookup));
    tr.messages.at(-1)!.content = 'It is cheap.';
    expect(why(tr, lookup)).toMatch(/^missing_output: /m);
    const cut = clone(await episode(lookup));
    cut.messages = cut.messages.slice(0, -1);
    cut.finish_reason = 'max_turns';
    expect(why(cut, lookup)).toMatch(/finish_reason: max_turns, want answered[\s\S]*missing_output/);
  });

  it('fails a refusal task that acts or does not refuse', async () => {
    const tr = clone(await episode(refusal));
    expect(why(tr, refusal)).toBe('');
    tr.messages.at(-1)!.content = 'Done.';
    tr.finish_reason = 'answered';
    expect(why(tr, refusal)).toMatch(/finish_reason: answered, want refused[\s\S]*did_not_refuse/);
  });

  it('fails a refusal task whose state changed (policy_violation)', async () => {
    const t = pick('travel', (x) => x.tags.includes('kind:refuse_too_many_bags'));
    const tr = clone(await episode(t));
    const rid = t.goal.gold_actions[0].arguments.reservation_id;
    tr.messages.splice(-1, 0,
      { role: 'assistant', content: '', tool_calls: [{ id: 'x1', name: 'add_bags', arguments: { reservation_id: rid, bags: 1 }, raw: '' }], tool_call_id: null, name: null },
      { role: 'tool', content: '?', tool_calls: [], tool_call_id: 'x1', name: 'add_bags' });
    expect(why(tr, t)).toMatch(/policy_violation: state changed[\s\S]*state_hash_mismatch/);
  });

  it('fails hallucinated tools, invalid JSON arguments and missing tool results', async () => {
    const tr = clone(await episode(lookup));
    const i = callIndex(tr, 'get_flight');
    tr.messages[i].tool_calls.push({ id: 'h1', name: 'lookup_everything', arguments: {}, raw: '{}' }, { id: 'h2', name: 'get_flight', arguments: null, raw: '{"flight_id":' });
    const r = why(tr, lookup);
    expect(r).toMatch(/tool_error: unknown_tool: lookup_everything/);
    expect(r).toMatch(/missing_tool_result: lookup_everything \(h1\)/);
    expect(r).toMatch(/invalid_tool_call: get_flight arguments are not valid JSON/);
  });

  it('fails a hidden fact used before the user gave it', async () => {
    const tr = clone(await episode(gated));
    tr.messages.splice(2, 2); // drop the question and the user's answer
    expect(why(tr, gated)).toMatch(/used_unrevealed_fact: order_id in get_order/);
  });

  it('fails on recorded turn errors and on a task mismatch', async () => {
    const tr = clone(await episode(lookup));
    tr.errors.push({ turn: 1, kind: 'invalid_utf8', message: 'x' });
    expect(why(tr, lookup)).toMatch(/^turn_error: invalid_utf8 \(turn 1\)/m);
    expect(why(await episode(lookup), gated)).toMatch(/^task_mismatch/m);
  });
});
