import type { Message } from '../../schemas/message.ts';
import type { Task } from '../../schemas/task.ts';
import type { ChatPolicy, ChatRequest } from '../agent/policy.ts';
import { USER_STOP } from '../agent/scripted.ts';

/*
 * A user simulator played by a chat model (e.g. through openai-chat.ts). The model sees the conversation from the
 * user's side: assistant turns become "user" turns and vice versa; tool traffic is hidden from it.
 */

export function userSystemPrompt(task: Task): string {
  const facts = Object.entries(task.hidden_facts).map(([k, v]) => `${k.replace(/_/g, ' ')}: ${v}`).join('; ');
  return [
    'You play a customer talking to a support agent. Speak in short sentences, as the customer.',
    `Your request: ${task.instruction}`,
    facts ? `Facts you know but give only when asked: ${facts}.` : '',
    'When the agent asks you to confirm an action that matches your request, answer "Yes, I confirm."',
    `When your request is done or refused, reply exactly ${USER_STOP}.`,
  ].filter(Boolean).join('\n');
}

const msg = (role: Message['role'], content: string): Message => ({ role, content, tool_calls: [], tool_call_id: null, name: null });

/** Flips the conversation so the model speaks as the user. */
export function userView(task: Task, messages: Message[]): Message[] {
  const out: Message[] = [msg('system', userSystemPrompt(task))];
  for (const m of messages) {
    if (m.role === 'assistant' && m.content.trim()) out.push(msg('user', m.content));
    else if (m.role === 'user') out.push(msg('assistant', m.content));
  }
  // the first turn: nothing said yet, so ask the model to open the conversation
  if (out.length === 1) out.push(msg('user', 'Hello, how can I help you today?'));
  return out;
}

export function llmUser(policy: ChatPolicy, task: Task): ChatPolicy {
  return {
    name: `user:${policy.name}`,
    async respond(req: ChatRequest): Promise<Message> {
      const reply = await policy.respond({ ...req, messages: userView(task, req.messages), tools: [] });
      return msg('user', reply.content);
    },
  };
}
