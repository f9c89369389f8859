import type { ChatPolicy, ChatRequest } from '../../agent/policy.ts';
import type { Message } from '../../../schemas/message.ts';
import { toPlain, type TauTask } from '../../worlds/tau/data.ts';
import { pyDumps } from '../../worlds/tau/pyvalue.ts';

/**
 * A ChatPolicy that plays a task's gold actions, one tool call per turn, then states the required outputs (before
 * a final transfer_to_human_agents, if the gold plan ends with one). Used to check the whole episode path (policy →
 * tool call → world → reward) gives reward 1, and as a deterministic agent in smoke DAGs.
 */
export class GoldPolicy implements ChatPolicy {
  readonly name = 'tau-gold';
  constructor(private readonly task: TauTask) {}

  async respond(req: ChatRequest): Promise<Message> {
    const done = req.messages.filter((m) => m.role === 'assistant' && m.tool_calls.length > 0).length;
    const said = req.messages.some((m) => m.role === 'assistant' && m.tool_calls.length === 0);
    const actions = this.task.actions;
    const transferLast = actions.at(-1)?.name === 'transfer_to_human_agents';
    const body = transferLast ? actions.slice(0, -1) : actions;
    if (done < body.length) return call(done, body[done].name, body[done].kwargs);
    if (!said) {
      const text = this.task.outputs.length ? `Here is what you asked: ${this.task.outputs.join('; ')}.` : 'Your request is complete.';
      return reply(transferLast ? `${text} Is there anything else?` : text);
    }
    if (transferLast) return call(done, 'transfer_to_human_agents', actions.at(-1)!.kwargs);
    return reply('Thank you.');
  }
}

const reply = (content: string): Message => ({ role: 'assistant', content, tool_calls: [], tool_call_id: null, name: null });
function call(i: number, name: string, kwargs: TauTask['actions'][number]['kwargs']): Message {
  const tc = { id: `gold_${i}`, name, arguments: toPlain(kwargs) as Record<string, unknown>, raw: pyDumps(kwargs) };
  return { role: 'assistant', content: '', tool_calls: [tc], tool_call_id: null, name: null };
}
