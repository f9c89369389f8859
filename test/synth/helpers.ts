import type { Message, ToolCall } from '../../schemas/message.ts';
import type { Task } from '../../schemas/task.ts';
import type { Trajectory } from '../../schemas/trajectory.ts';
import type { ChatPolicy, ChatRequest } from '../../runtime/agent/policy.ts';
import { getWorld } from '../../runtime/worlds/index.ts';
import { runEpisode } from '../../runtime/agent/loop.ts';
import { scriptedTeacher, scriptedUser } from '../../runtime/agent/scripted.ts';
import type { NoiseOptions } from '../../runtime/agent/plan.ts';

export async function episode(task: Task, seed = 1, noise: NoiseOptions = { rate: 0 }, teacher?: ChatPolicy): Promise<Trajectory> {
  return runEpisode({ task, world: getWorld(task.world), teacher: teacher ?? scriptedTeacher(task, seed, noise), user: scriptedUser(task), seed, trajectoryId: `${task.id}:s${seed}` });
}

export const say = (content: string, tool_calls: ToolCall[] = []): Message => ({ role: 'assistant', content, tool_calls, tool_call_id: null, name: null });
export const call = (name: string, args: Record<string, unknown> | null, raw = JSON.stringify(args)): ToolCall => ({ id: `c_${name}`, name, arguments: args, raw });

/** A teacher that plays a fixed list of assistant messages (a real ChatPolicy, used to feed bad input). */
export function fixedTeacher(script: Message[]): ChatPolicy {
  return {
    name: 'fixed',
    async respond(req: ChatRequest) {
      const turn = req.messages.filter((m) => m.role === 'assistant').length;
      return script[Math.min(turn, script.length - 1)];
    },
  };
}

export const clone = <T>(x: T): T => structuredClone(x);
