/*
 * τ-bench tools are looked up by own keys only: a call named __proto__, constructor or toString answers
 * `Unknown action <name>` as upstream does, and an episode with such a call goes on instead of ending in an exception.
 */
import { describe, expect, it } from 'vitest';
import type { ChatPolicy } from '../../runtime/agent/policy.ts';
import type { Message } from '../../schemas/message.ts';
import { runTauEpisode } from '../../runtime/eval/tau/episode.ts';
import { ScriptedUser } from '../../runtime/eval/tau/user.ts';
import { TauWorld, toTask } from '../../runtime/worlds/tau/world.ts';

const HOSTILE = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];

describe.each(['retail', 'airline'] as const)('τ-bench %s', (domain) => {
  const world = new TauWorld(domain);

  it('a call named like an Object.prototype member is an unknown action', () => {
    world.reset();
    for (const name of HOSTILE) {
      expect(world.call(name, {})).toEqual({ ok: false, kind: 'unknown_tool', message: `Unknown action ${name}` });
    }
  });

  it('an episode whose agent calls them goes on to the end', async () => {
    const task = world.data.tasks('test')[0];
    const goal = toTask(world, task);
    let turn = 0;
    const agent: ChatPolicy = {
      name: 'hostile',
      async respond(): Promise<Message> {
        const name = HOSTILE[turn++];
        if (!name) return { role: 'assistant', content: 'Goodbye.', tool_calls: [], tool_call_id: null, name: null };
        return { role: 'assistant', content: '', tool_calls: [{ id: `c${turn}`, name, arguments: {}, raw: '{}' }], tool_call_id: null, name: null };
      },
    };
    const r = await runTauEpisode({ world, instruction: task.instruction, goalHash: goal.goal.final_state_hash, requiredOutputs: task.outputs, agent, user: new ScriptedUser(), maxSteps: 10 });
    expect(r.error).toBeNull();
    expect(r.ended).toBe('user_stop');
    expect(r.messages.filter((m) => m.role === 'tool').map((m) => m.content)).toEqual(HOSTILE.map((n) => `Unknown action ${n}`));
  });
});
