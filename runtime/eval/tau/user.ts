import type { ChatPolicy } from '../../agent/policy.ts';
import type { Message } from '../../../schemas/message.ts';
import { msg } from '../../agent/loop.ts';
import { USER_STOP } from '../../agent/scripted.ts';

/*
 * τ-bench's simulated user. Two kinds:
 *  - LlmUser: any ChatPolicy (an OpenAI-compatible endpoint) with upstream's "llm" user prompt (tau_bench/envs/user.py):
 *    the instruction in the system prompt, the agent's turns as the simulator's "user" messages, starting with the
 *    agent greeting "Hi! How can I help you today?".
 *  - ScriptedUser: deterministic, no model. Opens with the instruction's request, then answers what the agent asks
 *    for from the facts it can read in the instruction (name, zip, email, ids), confirms when asked to confirm, and
 *    says ###STOP### when the agent asks nothing. For smoke tests and CI; not a substitute for an LLM user in scores.
 */
export interface TauUser {
  /** The user's first message. */
  start(instruction: string, signal?: AbortSignal): Promise<string>;
  /** The user's reply to an agent message (may contain ###STOP###). */
  reply(agentText: string, signal?: AbortSignal): Promise<string>;
}

/** The user's end-of-conversation marker (upstream's, and the one the episode loop ends on). */
export const STOP = USER_STOP;
const GREETING = 'Hi! How can I help you today?';

export function userSystemPrompt(instruction: string): string {
  return `You are a user interacting with an agent.\n\nInstruction: ${instruction}\nRules:
- Just generate one line at a time to simulate the user's message.
- Do not give away all the instruction at once. Only provide the information that is necessary for the current step.
- Do not hallucinate information that is not provided in the instruction. For example, if the agent asks for the order id but it is not mentioned in the instruction, do not make up an order id, just say you do not remember or have it.
- If the instruction goal is satisified, generate '${STOP}' as a standalone message without anything else to end the conversation.
- Do not repeat the exact instruction in the conversation. Instead, use your own words to convey the same information.
- Try to make the conversation as natural as possible, and stick to the personalities in the instruction.`;
}

export class LlmUser implements TauUser {
  private history: Message[] = [];
  constructor(private readonly policy: ChatPolicy) {}
  async start(instruction: string, signal?: AbortSignal): Promise<string> {
    this.history = [msg('system', userSystemPrompt(instruction)), msg('user', GREETING)];
    return this.next(signal);
  }
  async reply(agentText: string, signal?: AbortSignal): Promise<string> {
    this.history.push(msg('user', agentText));
    return this.next(signal);
  }
  private async next(signal?: AbortSignal): Promise<string> {
    const out = await this.policy.respond({ messages: this.history, tools: [], signal });
    this.history.push(msg('assistant', out.content));
    return out.content;
  }
}

export class ScriptedUser implements TauUser {
  private facts: Record<string, string> = {};
  private request = '';
  private turns = 0;
  constructor(private readonly maxTurns = 12) {}

  async start(instruction: string): Promise<string> {
    this.facts = readFacts(instruction);
    this.turns = 0;
    // Drop the persona sentence ("You are X in 12345.") and speak in the first person.
    this.request = instruction.replace(/^Your? (?:are|name is) [^.]*\.\s*/i, '').replace(/\bYou\b/g, 'I').replace(/\byou\b/g, 'I').replace(/\byour\b/gi, 'my');
    return this.request || instruction;
  }

  async reply(agentText: string): Promise<string> {
    if (++this.turns > this.maxTurns) return STOP;
    const t = agentText.toLowerCase();
    const answers: string[] = [];
    if (/e-?mail/.test(t)) answers.push(this.facts.email ? `My email is ${this.facts.email}.` : "I don't remember my email.");
    if (/name|zip/.test(t) && !/e-?mail/.test(t)) {
      answers.push(this.facts.name ? `My name is ${this.facts.name}${this.facts.zip ? ` and my zip code is ${this.facts.zip}` : ''}.` : "I'd rather not say.");
    }
    if (/user id|user_id/.test(t)) answers.push(this.facts.userId ? `My user id is ${this.facts.userId}.` : "I don't have it.");
    if (/order (id|number)|which order/.test(t)) answers.push(this.facts.orders ? `The order id is ${this.facts.orders}.` : "I don't remember the order id.");
    if (/reservation (id|number)|which reservation/.test(t)) answers.push(this.facts.reservations ? `The reservation id is ${this.facts.reservations}.` : "I don't remember the reservation id.");
    if (answers.length) return answers.join(' ');
    if (/confirm|proceed|\(yes\)|yes\/no|would you like|shall i|should i/.test(t)) return 'Yes, please go ahead.';
    if (t.includes('?')) return `As I said: ${this.request}`;
    return STOP;
  }
}

/** Facts a user could state, read from a τ-bench instruction. */
export function readFacts(instruction: string): Record<string, string> {
  const f: Record<string, string> = {};
  const name = /You are ([A-Z][a-z]+ [A-Z][a-z]+)/.exec(instruction) ?? /name is ([A-Z][a-z]+ [A-Z][a-z]+)/.exec(instruction);
  if (name) f.name = name[1];
  const zip = /\b(\d{5})\b/.exec(instruction);
  if (zip) f.zip = zip[1];
  const email = /[\w.+-]+@[\w-]+\.[\w.]+/.exec(instruction);
  if (email) f.email = email[0].replace(/\.$/, '');
  const userId = /\b([a-z]+_[a-z]+_\d{4})\b/.exec(instruction);
  if (userId) f.userId = userId[1];
  const orders = instruction.match(/#W\d{7}/g);
  if (orders) f.orders = [...new Set(orders)].join(' and ');
  const res = instruction.match(/\b[A-Z0-9]{6}\b/g)?.filter((r) => /\d/.test(r) && /[A-Z]/.test(r));
  if (res?.length) f.reservations = [...new Set(res)].join(' and ');
  return f;
}
