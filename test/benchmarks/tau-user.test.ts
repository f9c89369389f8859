import { describe, expect, it } from 'vitest';
import type { ChatPolicy, ChatRequest } from '../../runtime/agent/policy.ts';
import { LlmUser, ScriptedUser, readFacts, STOP } from '../../runtime/eval/tau/user.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTauDomain, readTasks } from '../../runtime/worlds/tau/data.ts';
import { runTauEpisode } from '../../runtime/eval/tau/episode.ts';
import { TauWorld, toTask } from '../../runtime/worlds/tau/world.ts';

const instruction = loadTauDomain('retail').tasks('test')[0].instruction; // Yusuf Rossi in 19122, order #W2378156

describe('τ-bench user simulators', () => {
  it('the scripted user states the request and reveals facts only when asked', async () => {
    const u = new ScriptedUser();
    const first = await u.start(instruction);
    expect(first).not.toMatch(/Yusuf|19122/);
    expect(first).toMatch(/#W2378156/);
    expect(await u.reply('Could you give me your name and zip code?')).toBe('My name is Yusuf Rossi and my zip code is 19122.');
    expect(await u.reply('What is your email?')).toBe("I don't remember my email.");
    expect(await u.reply('Shall I proceed with the exchange? Please confirm (yes/no).')).toBe('Yes, please go ahead.');
    expect(await u.reply('The exchange is done.')).toBe(STOP);
  });

  it('reads facts from instructions of both domains', () => {
    expect(readFacts(instruction)).toMatchObject({ name: 'Yusuf Rossi', zip: '19122', orders: '#W2378156' });
    const airline = loadTauDomain('airline').tasks('test').map((t) => readFacts(t.instruction));
    expect(airline.filter((f) => f.userId).length).toBeGreaterThan(40);
  });

  it("the LLM user sends upstream's prompt, the agent greeting first, and the agent's turns as its user turns", async () => {
    const seen: ChatRequest[] = [];
    const policy: ChatPolicy = { name: 'rec', async respond(req) { seen.push(structuredClone(req)); return { role: 'assistant', content: `u${seen.length}`, tool_calls: [], tool_call_id: null, name: null }; } };
    const u = new LlmUser(policy);
    expect(await u.start('Find my order.')).toBe('u1');
    expect(await u.reply('Sure, what is your email?')).toBe('u2');
    expect(seen[0].messages[0].content).toMatch(/^You are a user interacting with an agent\.\n\nInstruction: Find my order\.\n/);
    expect(seen[0].messages[1]).toMatchObject({ role: 'user', content: 'Hi! How can I help you today?' });
    expect(seen[1].messages.slice(2).map((m) => [m.role, m.content])).toEqual([['assistant', 'u1'], ['user', 'Sure, what is your email?']]);
    expect(seen[0].tools).toEqual([]);
  });
});

describe('τ-bench bad input', () => {
  it('a tool call whose arguments are not JSON is an error observation, and a failing agent ends the trial with reward 0', async () => {
    const world = new TauWorld('retail');
    const task = world.data.tasks('test')[0];
    const goal = toTask(world, task).goal;
    let turn = 0;
    const broken: ChatPolicy = { name: 'broken', async respond() {
      turn++;
      if (turn === 1) return { role: 'assistant', content: '', tool_calls: [{ id: 'c1', name: 'get_user_details', arguments: null, raw: '{"user_id": \u0000\u00ff' }], tool_call_id: null, name: null };
      return { role: 'assistant', content: 'Done, bye.', tool_calls: [], tool_call_id: null, name: null };
    } };
    const r = await runTauEpisode({ world, instruction: task.instruction, goalHash: goal.final_state_hash, requiredOutputs: task.outputs, agent: broken, user: new ScriptedUser() });
    expect(r.messages.find((m) => m.role === 'tool')?.content).toMatch(/^Error: arguments are not JSON/);
    expect(r).toMatchObject({ ended: 'user_stop', reward: 0, hashMatch: false });
    const failing: ChatPolicy = { name: 'down', async respond() { throw new Error('connect ECONNREFUSED 127.0.0.1:9'); } };
    const f = await runTauEpisode({ world, instruction: task.instruction, goalHash: goal.final_state_hash, requiredOutputs: [], agent: failing, user: new ScriptedUser() });
    expect(f).toMatchObject({ ended: 'error', reward: 0, error: 'connect ECONNREFUSED 127.0.0.1:9' });
  });

  it('a malformed task file names the file and the task', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'af-tau-')), 'tasks_test.json');
    writeFileSync(file, '[{"user_id": "u", "instruction": "i", "actions": [], "outputs": []}, {"user_id": 3}]');
    expect(() => readTasks(file, 'test')).toThrow(`${file}: task 1: user_id`);
    writeFileSync(file, '[{"user_id": "u",');
    expect(() => readTasks(file, 'test')).toThrow(file);
  });
});
