/*
 * The multi-turn agent loop on the real retail world, real tokenizer, parser and verifier, with a scripted
 * policy behind the engine interface: token/mask/logprob alignment, and every bad input ending (or not) with
 * its recorded reason and counts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadChatTokenizer, tokenizeConversation, type ChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { chatTurns, DEFAULT_LIMITS, runLoop, runRollout, type RolloutLimits, type TurnSource } from '../../runtime/agent/loop.ts';
import { runGroups } from '../../runtime/rl/groups.ts';
import { BatchingGenerator } from '../../runtime/agent/batcher.ts';
import { getWorld } from '../../runtime/worlds/index.ts';
import { scriptedUser } from '../../runtime/agent/scripted.ts';
import { scoreRollout, RewardParams } from '../../runtime/rewards/mix.ts';
import type { World } from '../../runtime/worlds/world.ts';
import type { Task } from '../../schemas/task.ts';
import { tinyTokenizer } from '../fixtures/python.ts';
import { call, goldStatus, LOGPROB, ScriptedEngine, statusTasks, type Script } from './helpers.ts';

let ct: ChatTokenizer;
let task: Task;
beforeAll(async () => {
  ct = loadChatTokenizer(await tinyTokenizer('qwen'));
  task = statusTasks(1)[0];
}, 900_000);

async function roll(script: Script, limits: Partial<RolloutLimits> = {}, world: World = getWorld('retail')) {
  const engine = new ScriptedEngine(ct, script);
  const r = await runRollout({ task, id: 'r0', groupId: 'g0', sample: 0, seed: 1, step: 0 }, {
    world, user: scriptedUser(task), gen: new BatchingGenerator(engine), ct, limits: { ...DEFAULT_LIMITS, maxContext: 16_384, ...limits }, sampling: { temperature: 1, topP: 1 },
  });
  return scoreRollout(r, task, RewardParams.parse({}));
}

describe('agent loop', () => {
  it('a correct policy succeeds; ids, mask and behaviour logprobs line up with the rendered conversation', async () => {
    const r = await roll(goldStatus);
    expect(r.finish_reason).toBe('answered');
    expect(r.success).toBe(true);
    expect(r.reward_components).toMatchObject({ outcome: 1, format: 1, validity: 1 });
    expect(r.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant']);
    const want = tokenizeConversation(ct, r.messages, r.tools);
    if (!want.straddled) expect(r.input_ids).toEqual(want.ids);
    expect(r.loss_mask.length).toBe(r.input_ids.length);
    expect(r.behaviour_logprobs.length).toBe(r.input_ids.length);
    r.loss_mask.forEach((m, i) => expect(r.behaviour_logprobs[i]).toBe(m ? LOGPROB : 0));
    expect(r.completion_tokens).toBe(r.loss_mask.reduce((a, b) => a + b, 0));
    expect(r.timings).toHaveLength(2);
    expect(r.trainable).toBe(true);
  });

  it('invalid tool-call JSON becomes an error observation, is counted, and the episode goes on', async () => {
    const r = await roll((p, turn) => (turn === 0 ? '<tool_call>\n{"name": "get_order", "arguments": {order_id: O-1}\n</tool_call>' : goldStatus(p, turn - 1)));
    expect(r.error_counts.parse_invalid_json).toBe(1);
    expect(r.messages[3]).toMatchObject({ role: 'tool' });
    expect(r.messages[3].content).toContain('invalid_tool_call');
    expect(r.turns).toBe(3);
    expect(r.success).toBe(false); // the verifier does not forgive a malformed call
    expect(r.reward_components.validity).toBe(0.5);
  });

  it('an unknown tool is answered with the world\'s error and counted', async () => {
    const r = await roll((p, turn) => (turn === 0 ? call('teleport', { to: 'mars' }) : goldStatus(p, turn - 1)));
    expect(r.error_counts.tool_unknown_tool).toBe(1);
    expect(r.messages[3].content).toContain('unknown_tool');
    expect(r.finish_reason).toBe('answered');
  });

  it('a model that never stops ends the episode with max_tokens', async () => {
    const r = await roll(() => null, { maxNewTokens: 12 });
    expect(r.finish_reason).toBe('max_tokens');
    expect(r.error_counts.no_stop).toBe(1);
    expect(r.completion_tokens).toBe(12);
    expect(r.reward_components.format).toBe(0);
  });

  it('a turn that runs into the context limit is a context overflow, not a missing stop', async () => {
    const probe = await roll(goldStatus);
    const r = await roll(() => null, { maxContext: probe.timings[0].prompt_tokens + 20, maxNewTokens: 64 });
    expect(r.finish_reason).toBe('context_overflow');
    expect(r.input_ids.length).toBeLessThanOrEqual(probe.timings[0].prompt_tokens + 20);
  });

  it('the same call again and again is a tool loop', async () => {
    const r = await roll(() => call('get_order', { order_id: 'O-1' }), { maxRepeats: 3 });
    expect(r.finish_reason).toBe('tool_loop');
    expect(r.turns).toBe(3);
    expect(r.error_counts.tool_loop).toBe(1);
  });

  it('a prompt that outgrows the context ends with context_overflow', async () => {
    const r = await roll(goldStatus, { maxContext: 40 });
    expect(r.finish_reason).toBe('context_overflow');
    expect(r.error_counts.context_overflow).toBe(1);
    expect(r.reward).toBe(r.reward_components.validity * 0.1); // only validity (no calls made) pays
  });

  it('a world that throws ends the episode as an untrainable error, with zero reward', async () => {
    const w = getWorld('retail');
    const broken: World = Object.assign(Object.create(Object.getPrototypeOf(w)), w, { call: () => { throw new Error('db down'); } });
    const r = await roll(goldStatus, {}, broken);
    expect(r.finish_reason).toBe('error');
    expect(r.error_counts.world_error).toBe(1);
    expect(r.trainable).toBe(false);
    expect(r.reward).toBe(0);
  });

  it('stops at the turn limit', async () => {
    let k = 0;
    const r = await roll(() => call('get_order', { order_id: `O-${k++}` }), { maxTurns: 2 });
    expect(r.finish_reason).toBe('max_turns');
    expect(r.turns).toBe(2);
  });

  it('a 5,000-deep call fails its own rollout with a reason; the rest of its wave completes', async () => {
    const deep = '{"a": '.repeat(5000) + '1' + '}'.repeat(5000);
    const tasks = statusTasks(3);
    const engine = new ScriptedEngine(ct, (p, turn) => (p.includes(tasks[1].instruction) && turn === 0
      ? `<tool_call>\n{"name": "get_order", "arguments": ${deep}}\n</tool_call>` : goldStatus(p, turn)));
    const gen = new BatchingGenerator(engine);
    const groups = await runGroups(tasks, {
      step: 0, seed: 1, groupSize: 2, concurrency: 6, score: (r, t) => scoreRollout(r, t, RewardParams.parse({})),
      run: (job) => runRollout(job, { world: getWorld('retail'), user: scriptedUser(job.task), gen, ct, limits: { ...DEFAULT_LIMITS, maxContext: 1_000_000, maxNewTokens: 100_000 }, sampling: { temperature: 1, topP: 1 } }),
    });
    expect(groups.map((g) => g.map((r) => r.success))).toEqual([[true, true], [false, false], [true, true]]);
    for (const r of groups[1]) expect(r.errors.map((e) => e.message)).toContain('tool call 0: "arguments" are nested deeper than 64 levels');
  });

  it('anything that still throws while processing a turn fails that episode with internal_error, not the caller', async () => {
    const inner = chatTurns({ name: 'p', respond: async () => { throw new Error('unreachable'); } });
    const exploding: TurnSource = { messages: inner.messages, append: (m) => inner.append(m), next: async () => { throw new RangeError('Maximum call stack size exceeded'); } };
    const world = getWorld('retail');
    world.reset(task);
    const r = await runLoop({ id: 'x', seed: 1, world, system: 'sys', assistant: exploding, user: async () => 'hello', maxTurns: 4 });
    expect(r.finish).toBe('error');
    expect(r.turns).toBe(1);
    expect(r.errors).toEqual([{ turn: 0, kind: 'internal_error', message: 'turn 0 could not be processed: Maximum call stack size exceeded' }]);
  });
});
