/*
 * A scripted policy behind the real InferenceEngine interface: it reads the prompt ids, decides what the
 * assistant says (text), and returns the text's token ids (+ <|im_end|>) with constant logprobs — so the agent
 * loop, parser, world and rewards all run for real on chosen behaviour (good, malformed, looping, endless).
 */
import type { GenerateRequest, GenerateResult, InferenceEngine } from '../../runtime/agent/engines/engine.ts';
import { decodeIds, encodeText, type ChatTokenizer } from '../../runtime/agent/tokenize.ts';
import type { Task } from '../../schemas/task.ts';
import { makeTasks } from '../../runtime/worlds/index.ts';

/** turn = assistant turns already in the prompt; `null` = babble forever (never emits the stop token). */
export type Script = (prompt: string, turn: number) => string | null;

export const LOGPROB = -0.25;

export class ScriptedEngine implements InferenceEngine {
  readonly name = 'scripted';
  policyVersion = 0;
  calls = 0;
  constructor(private readonly ct: ChatTokenizer, private readonly script: Script) {}

  async generate(reqs: GenerateRequest[]): Promise<GenerateResult[]> {
    this.calls++;
    return reqs.map((r) => {
      const prompt = decodeIds(this.ct, r.prompt);
      const turn = prompt.split('<|im_start|>assistant').length - 2;
      const text = this.script(prompt, turn);
      const body = text === null ? encodeText(this.ct, ' blah'.repeat(r.maxTokens)).slice(0, r.maxTokens) : [...encodeText(this.ct, text), this.ct.endOfTurnId];
      const tokens = body.slice(0, r.maxTokens);
      const stopped = tokens[tokens.length - 1] === this.ct.endOfTurnId;
      return { tokens, logprobs: tokens.map(() => LOGPROB), finish: stopped ? 'stop' : 'length', policyVersion: this.policyVersion };
    });
  }
  async reload(_dir: string, version?: number): Promise<void> { this.policyVersion = version ?? this.policyVersion + 1; }
  async close(): Promise<void> {}
}

/** JSON with Python's separators (", " and ": "), as the chat template's tojson renders tool calls. */
const pyJson = (v: unknown): string => (v !== null && typeof v === 'object' && !Array.isArray(v)
  ? `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pyJson(x)}`).join(', ')}}`
  : Array.isArray(v) ? `[${v.map(pyJson).join(', ')}]` : JSON.stringify(v));

/** A tool call exactly as the chat template renders it (what a well-trained model emits). */
export const call = (name: string, args: Record<string, unknown>): string =>
  `<tool_call>\n{"name": ${JSON.stringify(name)}, "arguments": ${pyJson(args)}}\n</tool_call>`;

/** Retail "status of order X" tasks: one get_order call, then "Order X is <status>." */
export const statusTasks = (n: number, split: 'train' | 'heldout' = 'train'): Task[] =>
  makeTasks('retail', { seed: 3, n, split, kinds: ['order_status'], distractorRate: 0 });

/** The gold behaviour for an order-status task, read off the prompt (the id from the user, the status from the tool). */
export const goldStatus: Script = (prompt, turn) => {
  const id = /status of order (O-\d+)/.exec(prompt)?.[1] ?? 'O-0';
  if (turn === 0) return call('get_order', { order_id: id });
  const status = /"status":"(\w+)"/.exec(prompt)?.[1] ?? 'unknown';
  return `Order ${id} is ${status}.`;
};
