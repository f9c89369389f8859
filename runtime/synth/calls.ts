import { Rng, derive31 } from '../engine/rng.ts';
import type { ToolCall } from '../../schemas/message.ts';
import type { ToolSpec } from '../../schemas/tool.ts';
import type { Trajectory } from '../../schemas/trajectory.ts';
import { andList, cap, CONCEPTS, type Concept, type ParamDef } from './call-catalog.ts';

/*
 * Single-turn function-calling conversations over the catalog's everyday functions (synthesize-calls). Each one
 * offers freshly named tools — name style, parameter names and order drawn per conversation — so the only way to
 * get the call right is to read the tool list. Kinds follow the shapes public function-calling benchmarks test:
 * one tool and one call, a call picked among several tools, several calls to one tool, calls to several tools, and
 * a request no offered tool serves (answered in words, no call).
 */

export const CALL_KINDS = ['simple', 'multiple', 'parallel', 'parallel_multiple', 'irrelevance'] as const;
export type CallKind = (typeof CALL_KINDS)[number];

type Style = 'snake' | 'camel' | 'dotted' | 'bare';
const STYLES: Style[] = ['snake', 'snake', 'camel', 'dotted', 'bare'];

interface Fn { concept: Concept; spec: ToolSpec; argName: Map<string, string> }

const camel = (words: string[]) => words.map((w, i) => (i ? cap(w) : w)).join('');
const styled = (style: Style, words: string[]) => (style === 'camel' ? camel(words) : words.join('_'));

function fnName(r: Rng, c: Concept, style: Style): string {
  const verb = r.pick(c.verbs);
  if (style === 'bare' && c.nouns.length > 1) return c.nouns.join('_');
  if (style === 'dotted') return `${c.module}.${[verb, ...c.nouns].join('_')}`;
  return styled(style, [verb, ...c.nouns]);
}

const jsonType = (p: ParamDef): Record<string, unknown> => ({
  type: p.type, description: p.description, ...(p.enum ? { enum: p.enum } : {}), ...(p.items ? { items: { type: p.items } } : {}),
});

function makeFn(r: Rng, c: Concept, taken: Set<string>): Fn {
  const style = r.pick(STYLES);
  let name = fnName(r, c, style);
  while (taken.has(name)) name = `${name}_v${r.int(2, 9)}`;
  taken.add(name);
  const argName = new Map(c.params.map((p) => [p.key, styled(style === 'camel' ? 'camel' : 'snake', r.pick(p.names).split('_'))]));
  const order = r.chance(0.3) ? r.shuffle(c.params) : c.params;
  const properties = Object.fromEntries(order.map((p) => [argName.get(p.key)!, jsonType(p)]));
  const required = order.filter((p) => !p.optional).map((p) => argName.get(p.key)!);
  const description = `${cap(c.does)}.`;
  return { concept: c, argName, spec: { type: 'function', function: { name, description, parameters: { type: 'object', properties, required } } } };
}

const PLACEHOLDER = /\{(\w+)\}/g;
const keysIn = (s: string) => [...s.matchAll(PLACEHOLDER)].map((m) => m[1]);

/** A request for one call of `fn`: the sentence and the call's arguments (required ones, and the optional ones it mentions). */
export function request(r: Rng, fn: Fn): { text: string; args: Record<string, unknown> } {
  const c = fn.concept;
  const ask = r.pick(c.asks);
  const values = new Map<string, unknown>();
  for (const p of c.params) {
    if (!p.optional || (ask.includes(`{${p.key}}`) && r.chance(0.5))) values.set(p.key, p.value(r));
  }
  const words = (key: string) => {
    const p = c.params.find((x) => x.key === key)!;
    return p.words ? p.words(values.get(key)) : String(values.get(key));
  };
  const text = ask
    .replace(/\[([^\]]*)\]/g, (_, seg: string) => (keysIn(seg).every((k) => values.has(k)) ? seg : ''))
    .replace(PLACEHOLDER, (_, k: string) => words(k));
  const args = Object.fromEntries(c.params.filter((p) => values.has(p.key)).map((p) => [fn.argName.get(p.key)!, values.get(p.key)]));
  return { text, args };
}

const lcFirst = (s: string) => (s.startsWith('"') ? s : s[0].toLowerCase() + s.slice(1));
const joinAsks = (r: Rng, asks: string[]) => asks.map((a, i) => (i === 0 ? a : `${r.pick(['Also,', 'And', 'Then'])} ${lcFirst(a)}`)).join(' ');

function noToolAnswer(r: Rng, asked: Concept, offered: Fn[]): string {
  const names = offered.map((f) => f.spec.function.name);
  return r.pick([
    `None of the available functions can ${asked.does}, so I can't do that with these tools.`,
    `I can't help with that here: the tools I have (${andList(names)}) only ${andList(offered.map((f) => f.concept.does))}.`,
    `Sorry, there is no tool to ${asked.does}. ${names.length > 1 ? 'The available ones' : `${names[0]}`} cannot do it.`,
  ]);
}

/** Conversation `i` of kind `kind`, drawn from its own sub-seed (so any one can be regenerated alone). */
export function callConversation(seed: number, i: number, kind: CallKind, maxTools: number): Trajectory {
  const r = Rng.derive('synth-calls', seed, i);
  const taken = new Set<string>();
  const calls = kind === 'parallel' ? r.int(2, 3) : kind === 'parallel_multiple' ? 2 : kind === 'irrelevance' ? 0 : 1;
  const called = r.sample(CONCEPTS, kind === 'parallel_multiple' ? 2 : 1);
  const extra = kind === 'multiple' ? r.int(1, maxTools - 1) : kind === 'parallel_multiple' ? r.int(0, Math.max(0, maxTools - 2))
    : kind === 'irrelevance' ? r.int(1, maxTools) : 0;
  const others = r.sample(CONCEPTS.filter((c) => !called.includes(c)), extra);
  const fns = (kind === 'irrelevance' ? others : [...called, ...others]).map((c) => makeFn(r, c, taken));
  let user: string;
  let answer: { content: string; tool_calls: ToolCall[] };
  if (kind === 'irrelevance') {
    const ask = request(r, makeFn(r, called[0], new Set()));
    user = ask.text;
    answer = { content: noToolAnswer(r, called[0], fns), tool_calls: [] };
  } else {
    const targets = kind === 'parallel' ? Array.from({ length: calls }, () => fns[0]) : fns.slice(0, called.length);
    const asks = targets.map((fn) => ({ fn, ...request(r, fn) }));
    user = joinAsks(r, asks.map((a) => a.text));
    answer = { content: '', tool_calls: asks.map((a, k) => ({ id: `call_${k}`, name: a.fn.spec.function.name, arguments: a.args, raw: JSON.stringify(a.args) })) };
  }
  const id = `calls:${seed}:${i}`;
  return {
    id, task_id: `calls:${kind}:${seed}:${i}`, world: 'calls', source: 'synth-calls', teacher: 'catalog', seed: derive31('synth-calls', seed, i),
    tools: r.shuffle(fns).map((f) => f.spec),
    messages: [
      { role: 'user', content: user, tool_calls: [], tool_call_id: null, name: null },
      { role: 'assistant', ...answer, tool_call_id: null, name: null },
    ],
    policy_version: 0, reward: null, reward_components: {}, turns: 1, finish_reason: 'answered', errors: [], difficulty: Math.max(1, calls), split: 'train',
  };
}

/** How many conversations of each kind n gives under these weights (largest remainder: exact, no sampling noise). */
export function kindCounts(n: number, weights: Partial<Record<CallKind, number>>): Array<[CallKind, number]> {
  const ws = CALL_KINDS.map((k) => [k, weights[k] ?? 0] as const).filter(([, w]) => w > 0);
  const total = ws.reduce((s, [, w]) => s + w, 0);
  if (total <= 0) throw new Error(`synthesize-calls: params.kinds gives no kind a weight above 0 (kinds: ${CALL_KINDS.join(', ')})`);
  const exact = ws.map(([k, w]) => [k, (n * w) / total] as const);
  const counts = exact.map(([k, x]) => [k, Math.floor(x)] as [CallKind, number]);
  const byRemainder = exact.map(([, x], i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let left = n - counts.reduce((s, [, c]) => s + c, 0), j = 0; left > 0; left--, j++) counts[byRemainder[j][1]][1]++;
  return counts;
}
