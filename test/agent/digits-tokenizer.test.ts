import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { runNodeCommand } from '../fixtures/python.ts';
import { randomConversation } from '../fixtures/conversations.ts';
import { encodeText, loadChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { CHAT_TEMPLATE } from '../../runtime/agent/chat-template.ts';

describe("init-model's 'digits' pre-tokenizer", () => {
  it('TS ids equal the Python tokenizer ids on rendered tool-use conversations, and digits never merge', async () => {
    const out = mkdtempSync(join(tmpdir(), 'af-digits-'));
    const template = new Template(CHAT_TEMPLATE);
    const texts = Array.from({ length: 40 }, (_, i) => {
      const c = randomConversation(100 + i);
      return template.render({ messages: c.messages, tools: c.tools.length ? c.tools : undefined, add_generation_prompt: false });
    });
    await runNodeCommand('init-model', { out_dir: out, chat_template: CHAT_TEMPLATE, texts, vocab_size: 600, pretokenizer: 'digits',
      hidden_size: 16, num_layers: 1, num_heads: 2, num_kv_heads: 1, head_dim: 8, intermediate_size: 32 });
    const ct = loadChatTokenizer(out);
    const py = await runNodeCommand<{ ids: number[][] }>('tokenize', { tokenizer: join(out, 'tokenizer.json'), texts });
    texts.forEach((t, i) => expect(encodeText(ct, t), `conversation ${i}`).toEqual(py.ids[i]));
    const ids = encodeText(ct, 'order O-6291');
    const digitTokens = ids.map((id) => ct.tokenizer.id_to_token(id) ?? '').filter((p) => /\d/.test(p));
    expect(digitTokens).toEqual(['6', '2', '9', '1']);
  });
});
