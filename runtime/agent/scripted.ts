import type { Message } from '../../schemas/message.ts';
import type { Task } from '../../schemas/task.ts';
import type { ChatPolicy, ChatRequest } from './policy.ts';
import { askText, confirmText, planFor, type NoiseKind, type NoiseOptions, type Step, type ToolKinds } from './plan.ts';
import { worldDef } from '../worlds/index.ts';
import { isConfirmation } from '../worlds/base.ts';
import { execTeacher, hasExecTeacher } from './code-teacher.ts';

/*
 * Scripted players. The teacher follows the world's own plan for the task (one plan step per assistant message,
 * so it is stateless: the step index is the number of assistant messages so far); the user reveals hidden facts
 * when asked, confirms when asked for a yes, and otherwise says it has nothing to add.
 */

const kindsCache = new Map<string, ToolKinds>();
export function toolKinds(world: string): ToolKinds {
  let k = kindsCache.get(world);
  if (!k) {
    const def = worldDef(world);
    k = {
      gated: new Set(def.tools.filter((t) => t.confirm).map((t) => t.name)),
      mutating: new Set(def.tools.filter((t) => t.mutates).map((t) => t.name)),
    };
    kindsCache.set(world, k);
  }
  return k;
}

function stepMessage(step: Step, turn: number): Message {
  const base = { tool_calls: [], tool_call_id: null, name: null };
  switch (step.kind) {
    case 'ask': return { ...base, role: 'assistant', content: askText(step.key) };
    case 'confirm': return { ...base, role: 'assistant', content: confirmText(step.action) };
    case 'answer': return { ...base, role: 'assistant', content: step.text };
    case 'call': {
      const raw = JSON.stringify(step.action.arguments);
      return { ...base, role: 'assistant', content: '', tool_calls: [{ id: `call_${turn}`, name: step.action.name, arguments: step.action.arguments, raw }] };
    }
  }
}

export interface ScriptedTeacher extends ChatPolicy {
  readonly noise: NoiseKind | null;
}

export function scriptedTeacher(task: Task, seed: number, noise: NoiseOptions = { rate: 0 }): ScriptedTeacher {
  // code and repo repair: several solution paths per task (code-teacher.ts)
  if (hasExecTeacher(task.world)) return execTeacher(task, seed, noise.rate) as ScriptedTeacher;
  const plan = planFor(task, toolKinds(task.world), seed, noise);
  return {
    name: plan.noise ? `scripted+${plan.noise}` : 'scripted',
    noise: plan.noise,
    async respond(req: ChatRequest): Promise<Message> {
      const turn = req.messages.filter((m) => m.role === 'assistant').length;
      // past the end of the plan (a user kept talking): repeat the final answer
      return stepMessage(plan.steps[Math.min(turn, plan.steps.length - 1)], turn);
    },
  };
}

export const USER_STOP = '###STOP###';

/** The scripted user: speaks the instruction, answers questions about hidden facts, confirms when asked. */
export function scriptedUser(task: Task): ChatPolicy {
  return {
    name: 'scripted-user',
    async respond(req: ChatRequest): Promise<Message> {
      const say = (content: string): Message => ({ role: 'user', content, tool_calls: [], tool_call_id: null, name: null });
      const last = [...req.messages].reverse().find((m) => m.role === 'assistant');
      if (!last) return say(task.instruction);
      const text = last.content.toLowerCase();
      // a confirmation request quotes the call's arguments (which may name a fact), so it is checked first
      if (text.includes('(yes/no)') || /\bconfirm\b/.test(text)) return say('Yes, I confirm.');
      for (const [key, value] of Object.entries(task.hidden_facts)) {
        if (text.includes(key.replace(/_/g, ' ')) || text.includes(key)) return say(`My ${key.replace(/_/g, ' ')} is ${value}.`);
      }
      return say(USER_STOP);
    },
  };
}

/** True when a user turn should authorise a gated call (re-exported for players that need it). */
export { isConfirmation };
