/*
 * The rollout side of tokenization (ChatTokens: token-in/token-out), the generic-template path, the output
 * parser (round trip with the template; malformed calls become errors, never throws) and error messages.
 */
import { Template } from '@huggingface/jinja';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHAT_TEMPLATE, GENERATION_PROMPT } from '../../runtime/agent/chat-template.ts';
import { parseAssistant, toAssistantMessage } from '../../runtime/agent/parse.ts';
import { ChatTokens, decodeIds, encodeText, loadChatTokenizer, renderChat, tokenizeConversation, type ChatTokenizer } from '../../runtime/agent/tokenize.ts';
import type { Message } from '../../schemas/message.ts';
import { randomConversation } from '../fixtures/conversations.ts';
import { tinyTokenizer } from '../fixtures/python.ts';

describe('ChatTokens (rollout loop API)', () => {
  let ct: ChatTokenizer;
  beforeAll(async () => { ct = loadChatTokenizer(await tinyTokenizer('qwen')); }, 900_000);

  it('prompt + generated tokens + rendered turns reproduce the SFT tokenization when generation is canonical', () => {
    let compared = 0;
    for (let seed = 0; seed < 60; seed++) {
      const { messages, tools } = randomConversation(seed);
      const want = tokenizeConversation(ct, messages, tools);
      if (want.straddled) continue; // a merged header token can never be generated
      const st = new ChatTokens(ct, tools);
      messages.forEach((m, i) => {
        if (m.role !== 'assistant') return st.appendMessage(m);
        const prompt = st.generationPrompt();
        expect(prompt).toEqual(want.ids.slice(0, prompt.length));
        // what a model would emit after the prompt: the turn's body through <|im_end|>
        const segment = renderChat(ct, messages.slice(0, i + 1), tools).slice(renderChat(ct, messages.slice(0, i), tools).length);
        const body = segment.slice(GENERATION_PROMPT.length, segment.lastIndexOf('<|im_end|>') + '<|im_end|>'.length);
        st.appendGenerated(encodeText(ct, body), toAssistantMessage(parseAssistant(body)));
      });
      expect(st.result().ids).toEqual(want.ids);
      expect(st.result().mask).toEqual(want.mask);
      compared++;
    }
    expect(compared).toBeGreaterThan(40);
  });

  it('keeps non-canonical generated ids as they are, masked 1, and a cut-off turn gets no suffix', () => {
    const st = new ChatTokens(ct, []);
    st.appendMessage({ role: 'user', content: 'hi' });
    const before = st.ids.length;
    const header = encodeText(ct, GENERATION_PROMPT).length;
    const letters = [...'hello'].map((c) => ct.tokenizer.token_to_id(c)!);
    st.appendGenerated([...letters, ct.endOfTurnId], { role: 'assistant', content: 'hello' });
    expect(st.ids.slice(before + header)).toEqual([...letters, ct.endOfTurnId, ...encodeText(ct, '\n')]);
    expect(st.mask.slice(before)).toEqual([...Array(header).fill(0), 1, 1, 1, 1, 1, 1, 0]);
    st.appendMessage({ role: 'user', content: 'more' });
    const n = st.ids.length;
    st.appendGenerated(letters.slice(0, 2), { role: 'assistant', content: 'he' });
    expect(st.ids.length).toBe(n + header + 2);
    expect(decodeIds(ct, st.ids)).toContain('<|im_start|>assistant\nhe');
  });

  it('a generic template (full-prefix rendering) gives the same result', () => {
    const generic = { ...ct, template: ct.template, templateSource: `${CHAT_TEMPLATE}{#- not ours #}`, cache: new Map() };
    for (let seed = 100; seed < 130; seed++) {
      const { messages, tools } = randomConversation(seed);
      expect(tokenizeConversation(generic, messages, tools, { verify: true })).toEqual(tokenizeConversation(ct, messages, tools));
    }
  });

  it('refuses templates whose opening turns are not prefix-stable, naming the message', () => {
    // (a template that drops tools is refused at load unless requireTools is false; SFT renders whole conversations)
    const bad = loadChatTokenizer(ct.source, { chatTemplate: '{% for m in messages | reverse %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}', requireTools: false });
    const st = new ChatTokens(bad, []);
    st.appendMessage({ role: 'user', content: 'a' });
    expect(() => st.appendMessage({ role: 'user', content: 'b' })).toThrow(/message 1 \(user\).*rewrites earlier turns/);
  });
});

describe('parseAssistant', () => {
  it('inverts the template for well-formed turns', () => {
    const template = new Template(CHAT_TEMPLATE);
    let calls = 0;
    for (let seed = 0; seed < 80; seed++) {
      const { messages } = randomConversation(seed);
      for (const m of messages.filter((x) => x.role === 'assistant')) {
        const text = template.render({ messages: [m] }).slice(GENERATION_PROMPT.length).replace(/<\|im_end\|>\n$/, '');
        const p = parseAssistant(text, 'c');
        expect(p.errors).toEqual([]);
        expect(p.content).toBe(m.content);
        expect(p.tool_calls.map((c) => [c.name, c.arguments])).toEqual(m.tool_calls.map((c) => [c.name, c.arguments]));
        calls += m.tool_calls.length;
      }
    }
    expect(calls).toBeGreaterThan(20);
  });

  it('turns malformed calls into errors with the raw text, never throwing', () => {
    const p = parseAssistant('Let me look.\n<tool_call>\n{"name": "search", "arguments": {"q": "x"\n</tool_call>\n' +
      '<tool_call>\n{"name": "calc", "arguments": "{\\"a\\": 1}"}\n</tool_call>\n<tool_call>\n[1]\n</tool_call>\n' +
      '<tool_call>\n{"arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "cut", "argu<|im_end|>');
    expect(p.content).toBe('Let me look.');
    expect(p.tool_calls.map((c) => [c.id, c.name, c.arguments])).toEqual([
      ['call_0', 'search', null], ['call_1', 'calc', { a: 1 }], ['call_2', '', null], ['call_3', '', null], ['call_4', 'cut', null]]);
    expect(p.tool_calls[0].raw).toBe('{"name": "search", "arguments": {"q": "x"');
    expect(p.errors.map((e) => [e.call, e.kind])).toEqual([[0, 'invalid_json'], [2, 'not_an_object'], [3, 'missing_name'], [4, 'unclosed_tool_call']]);
    expect(parseAssistant('plain answer<|im_end|>')).toEqual({ content: 'plain answer', tool_calls: [], errors: [] });
  });
});
