import { describe, expect, it } from 'vitest';
import { Trajectory } from '../../schemas/trajectory.ts';
import { makeTasks } from '../../runtime/worlds/index.ts';
import { verifyTrajectory } from '../../runtime/worlds/verify.ts';
import { call, episode, fixedTeacher, say } from './helpers.ts';

const task = makeTasks('retail', { seed: 2, n: 200 }).find((t) => t.tags.includes('kind:order_status') && t.tags.includes('distractors'))!;
const oid = task.goal.gold_actions[0].arguments.order_id as string;
const answer = say(task.goal.reference_answer!);

/** Runs the scripted user against a teacher that plays `script`; returns the trajectory and its verdict. */
async function play(...script: ReturnType<typeof say>[]) {
  const tr = Trajectory.parse(await episode(task, 1, { rate: 0 }, fixedTeacher(script)));
  return { tr, v: verifyTrajectory(tr, task), kinds: tr.errors.map((e) => e.kind) };
}

describe('bad input from the model becomes a turn error, never a crash', () => {
  it('sanity: the same teacher harness passes with good input', async () => {
    const { v } = await play(say('', [call('get_order', { order_id: oid })]), answer);
    expect(v.pass).toBe(true);
  });

  it('invalid JSON arguments', async () => {
    const { tr, v, kinds } = await play(say('', [call('get_order', null, '{"order_id": "O-')]), say('', [call('get_order', { order_id: oid })]), answer);
    expect(kinds).toEqual(['invalid_json_args']);
    expect(tr.messages.find((m) => m.role === 'tool')!.content).toMatch(/not valid JSON/);
    expect(v.pass).toBe(false);
  });

  it('unknown tools and wrong argument types', async () => {
    const { tr, v, kinds } = await play(say('', [call('delete_everything', {}), call('get_order', { order_id: 12 })]), answer);
    expect(kinds).toEqual(['tool_unknown_tool', 'tool_invalid_args']);
    expect(tr.errors[1].message).toMatch(/order_id: Invalid input: expected string/);
    expect(v.reasons.join('\n')).toMatch(/tool_error: unknown_tool[\s\S]*tool_error: invalid_args/);
  });

  it('empty and gigantic messages', async () => {
    const empty = await play(say(''));
    expect(empty.kinds).toEqual(['empty_message']);
    expect(empty.tr.finish_reason).toBe('error');
    expect(empty.v.pass).toBe(false);
    const huge = await play(say('x'.repeat(2_000_000)));
    expect(huge.kinds).toEqual(['assistant_message_too_large']);
    expect(huge.tr.messages.at(-1)!.content.length).toBe(8000);
    expect(huge.v.pass).toBe(false);
  });

  it('invalid UTF-8 (lone surrogates) in a tool result and in a message', async () => {
    const r = await play(say('', [call('get_weather', { city: 'par\uD800is' })]), say('', [call('get_order', { order_id: oid })]), answer);
    expect(r.kinds).toEqual(['invalid_utf8']);
    expect(r.v.pass).toBe(false);
    const m = await play(say('', [call('get_order', { order_id: oid })]), say(`${task.goal.reference_answer} \uDC00`));
    expect(m.kinds).toEqual(['invalid_utf8']);
    expect(m.tr.messages.at(-1)!.content).toContain('\uFFFD');
    expect(m.v.pass).toBe(false);
  });

  it('a teacher that throws is recorded as teacher_error', async () => {
    const boom = { name: 'boom', async respond(): Promise<never> { throw new Error('socket hang up'); } };
    const tr = await episode(task, 1, { rate: 0 }, boom);
    expect(tr.finish_reason).toBe('error');
    expect(tr.errors).toEqual([{ turn: 0, kind: 'teacher_error', message: 'socket hang up' }]);
  });

  it('stops at the turn limit', async () => {
    const { tr, v } = await play(say('', [call('get_order', { order_id: oid })]));
    expect(tr.finish_reason).toBe('max_turns');
    expect(tr.turns).toBe(16);
    expect(v.pass).toBe(false);
  });
});
