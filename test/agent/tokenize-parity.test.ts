/*
 * Tokenization parity TS vs Python on 240 random conversations per tokenizer style (GPT-2 byte-level regex and
 * the Qwen2 split regex): the chat template renders identically in @huggingface/jinja and transformers, TS
 * incremental ids equal Python `tokenizers` ids of the whole text, and the mask equals an oracle computed from
 * Python's token offsets (1 iff the token lies inside an assistant body "…<|im_end|>").
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CHAT_TEMPLATE } from '../../runtime/agent/chat-template.ts';
import { firstDifference, loadChatTokenizer, renderChat, tokenizeConversation, type ChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { randomConversation, type Conversation } from '../fixtures/conversations.ts';
import { runNodeCommand, tinyTokenizer, type TokenizerStyle } from '../fixtures/python.ts';

const N = 240;

interface PyResult { ids: number[][]; rendered: string[]; offsets: [number, number][][] }

/** Expected mask from code-point offsets: inside [after "<|im_start|>assistant\n", through "<|im_end|>"]. */
function oracleMask(text: string, offsets: [number, number][]): number[] {
  const cps = Array.from(text);
  const joined = (a: number, b: number) => cps.slice(a, b).join('');
  const spans: [number, number][] = [];
  const header = Array.from('<|im_start|>assistant\n');
  const end = Array.from('<|im_end|>');
  for (let i = 0; i + header.length <= cps.length; i++) {
    if (joined(i, i + header.length) !== header.join('')) continue;
    let j = i + header.length;
    while (joined(j, j + end.length) !== end.join('')) j++;
    spans.push([i + header.length, j + end.length]);
  }
  return offsets.map(([s, e]) => (spans.some(([a, b]) => s >= a && e <= b) ? 1 : 0));
}

describe.each(['qwen', 'gpt2'] as TokenizerStyle[])('tokenization parity (%s tokenizer)', (style) => {
  let ct: ChatTokenizer;
  let convs: Conversation[];
  let py: PyResult;
  let texts: string[];

  beforeAll(async () => {
    const dir = await tinyTokenizer(style);
    ct = loadChatTokenizer(dir, { chatTemplate: CHAT_TEMPLATE });
    convs = Array.from({ length: N }, (_, i) => randomConversation(1000 + i));
    texts = convs.map((c) => renderChat(ct, c.messages, c.tools));
    py = await runNodeCommand<PyResult>('tokenize', {
      tokenizer: dir, texts, offsets: true, chat_template: CHAT_TEMPLATE,
      conversations: convs.map((c) => ({ messages: c.messages, tools: c.tools })),
    });
  }, 900_000); // first use may bootstrap the Python env

  it('renders the chat template exactly as transformers does', () => {
    const bad = texts.map((t, i) => (t === py.rendered[i] ? -1 : i)).filter((i) => i >= 0);
    expect(bad).toEqual([]);
  });

  it('incremental TS ids equal Python ids of the whole text', () => {
    let tokens = 0;
    for (let i = 0; i < N; i++) {
      const { ids } = tokenizeConversation(ct, convs[i].messages, convs[i].tools);
      const d = firstDifference(ids, py.ids[i]);
      expect(d, `conversation ${i}: first differing token ${d}`).toBe(-1);
      tokens += ids.length;
    }
    expect(tokens).toBeGreaterThan(N * 50);
  });

  it('mask equals the offset oracle, trains every <|im_end|> of assistant turns and nothing else', () => {
    let straddled = 0;
    for (let i = 0; i < N; i++) {
      const out = tokenizeConversation(ct, convs[i].messages, convs[i].tools);
      straddled += out.straddled;
      expect(out.mask, `conversation ${i}`).toEqual(oracleMask(texts[i], py.offsets[i]));
      const assistantTurns = convs[i].messages.filter((m) => m.role === 'assistant').length;
      const trainedEnds = out.ids.filter((id, k) => id === ct.endOfTurnId && out.mask[k] === 1).length;
      expect(trainedEnds).toBe(assistantTurns);
    }
    expect(straddled).toBeGreaterThan(0); // the generator does produce leading-newline assistant turns
  });
});
