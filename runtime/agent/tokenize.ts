/*
 * Messages + tools → token ids and an assistant-only loss mask, token-in/token-out.
 *
 * The conversation is rendered incrementally: for message i, the text the template adds is
 * render(messages[..i+1]) minus render(messages[..i]) (checked to be a pure extension), and only that segment is
 * encoded. Every segment starts with a special token (<|im_start|>), which the tokenizer never merges across, so
 * the concatenated segment ids equal the ids of the whole text — the parity test checks this against Python.
 *
 * Mask: 1 for an assistant turn's tokens after `<|im_start|>assistant\n` through its `<|im_end|>` inclusive; 0 for
 * system, user and tool turns, for the header and for the newline after <|im_end|>. One subtlety: when assistant
 * content starts with whitespace/newlines, BPE may merge the header's "\n" with it into one token. Such a token
 * is masked (counted in `straddled`): at inference the prompt already ends with the header's own tokens, so the
 * model can never emit a merged token and should not be trained on it.
 *
 * The rollout loop uses ChatTokens: it appends rendered segments for user/tool turns and the model's own
 * generated ids for assistant turns, so what the trainer sees is exactly what the policy produced.
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Message, MessageInput } from '../../schemas/message.ts';
import type { ToolSpec } from '../../schemas/tool.ts';
import { CHAT_TEMPLATE, EOS_TOKEN } from './chat-template.ts';

export interface ChatTokenizer {
  tokenizer: Tokenizer;
  template: Template;
  templateSource: string;
  /** The assistant's end-of-turn token (tokenizer_config eos_token, default <|im_end|>). */
  endOfTurnId: number;
  specialTokens: string[];
  /** Where it was loaded from, for error messages. */
  source: string;
  /** Ids of recent long segments: system prompts and tool lists repeat across the trajectories of a world. */
  cache: Map<string, number[]>;
}

const PLACEHOLDER: ChatMessage = { role: 'user', content: '' };
const CACHE_MIN_CHARS = 256;
const CACHE_ENTRIES = 2048;

type ChatMessage = Message | MessageInput;

/** Loads tokenizer.json (+ tokenizer_config.json chat_template / eos_token) from a model or tokenizer dir. */
export function loadChatTokenizer(dir: string, opts: { chatTemplate?: string } = {}): ChatTokenizer {
  const tjPath = join(dir, 'tokenizer.json');
  if (!existsSync(tjPath)) throw new Error(`loadChatTokenizer: no tokenizer.json in ${dir}`);
  const tokenizerJson = JSON.parse(readFileSync(tjPath, 'utf8')) as { added_tokens?: { content: string; special: boolean }[] };
  const cfgPath = join(dir, 'tokenizer_config.json');
  const config = existsSync(cfgPath) ? (JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>) : {};
  const templateSource = opts.chatTemplate ?? (typeof config.chat_template === 'string' ? config.chat_template : CHAT_TEMPLATE);
  const tokenizer = new Tokenizer(tokenizerJson, config);
  const eos = typeof config.eos_token === 'string' ? config.eos_token : EOS_TOKEN;
  const endOfTurnId = tokenizer.token_to_id(eos);
  if (endOfTurnId === undefined) throw new Error(`loadChatTokenizer: end-of-turn token ${eos} is not in ${tjPath}`);
  const specialTokens = (tokenizerJson.added_tokens ?? []).filter((t) => t.special).map((t) => t.content);
  return { tokenizer, template: new Template(templateSource), templateSource, endOfTurnId, specialTokens, source: dir, cache: new Map() };
}

/** Token ids of a text that already carries its special tokens (no BOS/EOS added). */
export function encodeText(ct: ChatTokenizer, text: string): number[] {
  if (text.length === 0) return [];
  if (text.length < CACHE_MIN_CHARS) return ct.tokenizer.encode(text, { add_special_tokens: false }).ids;
  const hit = ct.cache.get(text);
  if (hit) return hit.slice();
  const ids = ct.tokenizer.encode(text, { add_special_tokens: false }).ids;
  if (ct.cache.size >= CACHE_ENTRIES) ct.cache.delete(ct.cache.keys().next().value!);
  ct.cache.set(text, ids);
  return ids.slice();
}

export function decodeIds(ct: ChatTokenizer, ids: number[], skipSpecial = false): string {
  return ct.tokenizer.decode(ids, { skip_special_tokens: skipSpecial });
}

export function renderChat(ct: ChatTokenizer, messages: ChatMessage[], tools: ToolSpec[], addGenerationPrompt = false): string {
  return ct.template.render({
    messages: messages.map(plainMessage),
    tools: tools.length ? tools : undefined,
    add_generation_prompt: addGenerationPrompt,
  });
}

// The template sees plain objects; defaults are filled so `message.tool_calls` is always a list.
function plainMessage(m: ChatMessage): Record<string, unknown> {
  return { ...m, content: m.content ?? '', tool_calls: m.tool_calls ?? [] };
}

export interface TokenizedChat {
  ids: number[];
  /** 1 where the token is trained (assistant content through <|im_end|>), else 0. */
  mask: number[];
  /** Index in `ids` where each message's segment starts. */
  messageStarts: number[];
  /** Assistant turns whose first content token merged with the header newline (that token is masked). */
  straddled: number;
}

/**
 * Incremental conversation state: ids and mask so far. `appendMessage` adds a rendered segment; `generationPrompt`
 * + `appendGenerated` add the model's own tokens for an assistant turn.
 *
 * Rendering context: a generic template is rendered over the whole prefix (O(n²) over a conversation). For our
 * CHAT_TEMPLATE, by design, a turn after the first renders the same whatever came before it, so it is rendered
 * after a one-message placeholder instead (tokenizeConversation re-checks the result against one full render).
 */
export class ChatTokens {
  readonly messages: ChatMessage[] = [];
  readonly ids: number[] = [];
  readonly mask: number[] = [];
  readonly messageStarts: number[] = [];
  straddled = 0;
  /** Concatenated segment texts (what the template rendered, with assistant turns as rendered, not generated). */
  text = '';
  private readonly local: boolean;
  private prefixRender: { n: number; text: string } = { n: 0, text: '' };
  private header: { n: number; text: string } | null = null;

  constructor(readonly ct: ChatTokenizer, readonly tools: ToolSpec[]) {
    this.local = ct.templateSource === CHAT_TEMPLATE;
  }

  /** Appends one message rendered by the template; assistant turns are masked as described above. */
  appendMessage(message: ChatMessage): void {
    const where = `message ${this.messages.length} (${message.role})`;
    const segment = this.segment(message, where);
    const ids = encodeText(this.ct, segment);
    const mask = message.role === 'assistant' ? this.assistantMask(segment, ids, where) : ids.map(() => 0);
    this.push(ids, mask, message, segment);
  }

  /** Prompt ids for the next assistant turn: everything so far plus the template's generation prompt. */
  generationPrompt(): number[] {
    return [...this.ids, ...encodeText(this.ct, this.headerText())];
  }

  /**
   * Appends an assistant turn as the model generated it: header (mask 0), then `generated` (mask 1, including
   * the <|im_end|> it stopped on), then the template's text after <|im_end|> (mask 0) when the turn ended.
   * `message` is the parsed turn; it only serves later renders (the ids are never re-derived from it).
   */
  appendGenerated(generated: number[], message: ChatMessage): void {
    if (message.role !== 'assistant') throw new Error(`appendGenerated: message must be an assistant turn, got ${message.role}`);
    const headerText = this.headerText();
    const header = encodeText(this.ct, headerText);
    const ended = generated.length > 0 && generated[generated.length - 1] === this.ct.endOfTurnId;
    const suffix = ended ? this.turnSuffix(this.segment(message, `message ${this.messages.length} (assistant)`)) : '';
    const tail = encodeText(this.ct, suffix);
    const ids = [...header, ...generated, ...tail];
    const mask = [...header.map(() => 0), ...generated.map(() => 1), ...tail.map(() => 0)];
    this.push(ids, mask, message, headerText + decodeIds(this.ct, generated) + suffix);
  }

  result(): TokenizedChat {
    return { ids: [...this.ids], mask: [...this.mask], messageStarts: [...this.messageStarts], straddled: this.straddled };
  }

  private push(ids: number[], mask: number[], message: ChatMessage, text: string): void {
    this.messageStarts.push(this.ids.length);
    for (let i = 0; i < ids.length; i++) {
      this.ids.push(ids[i]);
      this.mask.push(mask[i]);
    }
    this.messages.push(message);
    this.text += text;
  }

  /** What a new turn is rendered after (see the class comment): messages and tools. */
  private context(): [ChatMessage[], ToolSpec[]] {
    if (!this.local) return [this.messages, this.tools];
    // any first message will do: later turns of CHAT_TEMPLATE never look at it, so skip the costly tools block
    return this.messages.length ? [[PLACEHOLDER], []] : [[], this.tools];
  }

  private renderPrefix(): string {
    const [msgs, tools] = this.context();
    // no messages = no text, even when a template would emit a default system block for them: that block then
    // belongs to the first message's segment
    if (msgs.length === 0) return '';
    if (this.prefixRender.n !== msgs.length || !this.local) this.prefixRender = { n: msgs.length, text: renderChat(this.ct, msgs, tools) };
    return this.prefixRender.text;
  }

  /** Text the template adds for `message` after the current context. */
  private segment(message: ChatMessage, where: string): string {
    const [msgs, tools] = this.context();
    return this.extension(this.renderPrefix(), renderChat(this.ct, [...msgs, message], tools), where);
  }

  private headerText(): string {
    const [msgs, tools] = this.context();
    if (!this.header || this.header.n !== msgs.length || !this.local) {
      const withPrompt = renderChat(this.ct, msgs, tools, true);
      this.header = { n: msgs.length, text: this.extension(this.renderPrefix(), withPrompt, 'generation prompt') };
    }
    return this.header.text;
  }

  /** Text the template puts after the last end-of-turn token of a segment (e.g. "\n"). */
  private turnSuffix(segment: string): string {
    const eos = this.ct.tokenizer.id_to_token(this.ct.endOfTurnId) ?? '';
    const at = segment.lastIndexOf(eos);
    return at < 0 ? '' : segment.slice(at + eos.length);
  }

  /** The new text `next` adds to `prev`; refuses templates that rewrite earlier turns or split outside specials. */
  private extension(prev: string, next: string, where: string): string {
    if (!next.startsWith(prev)) {
      throw new Error(`tokenize ${where}: the chat template rewrote earlier turns (rendering is not prefix-stable), ` +
        `so incremental tokenization is impossible; template from ${this.ct.source}`);
    }
    const segment = next.slice(prev.length);
    if (prev.length > 0 && segment.length > 0 && !this.ct.specialTokens.some((s) => segment.startsWith(s))) {
      throw new Error(`tokenize ${where}: segment starts with ${JSON.stringify(segment.slice(0, 20))}, not a special ` +
        'token, so encoding it alone could differ from encoding the whole text');
    }
    return segment;
  }

  private assistantMask(segment: string, ids: number[], where: string): number[] {
    const header = this.headerText();
    if (!segment.startsWith(header)) throw new Error(`tokenize ${where}: assistant turn does not start with the generation prompt ${JSON.stringify(header)}`);
    const headerIds = encodeText(this.ct, header);
    let k = 0;
    while (k < headerIds.length && ids[k] === headerIds[k]) k++;
    if (k < headerIds.length) {
      this.straddled++;
      k++; // the merged header/content token
    }
    const end = ids.lastIndexOf(this.ct.endOfTurnId);
    if (end < k) throw new Error(`tokenize ${where}: no end-of-turn token in the assistant turn`);
    return ids.map((_, i) => (i >= k && i <= end ? 1 : 0));
  }
}

/** Tokenizes a whole conversation (SFT path); `verify` also encodes the full text and checks the ids agree. */
export function tokenizeConversation(ct: ChatTokenizer, messages: ChatMessage[], tools: ToolSpec[], opts: { verify?: boolean } = {}): TokenizedChat {
  const state = new ChatTokens(ct, tools);
  for (const m of messages) state.appendMessage(m);
  const out = state.result();
  // one full render guards the context shortcut (cheap next to tokenizing)
  if (state.text !== renderChat(ct, messages, tools)) {
    throw new Error(`tokenizeConversation: per-turn renders do not add up to the full render (template from ${ct.source}); ` +
      'the template makes a turn depend on earlier turns other than the first');
  }
  if (opts.verify) {
    const whole = encodeText(ct, state.text);
    const i = firstDifference(whole, out.ids);
    if (i >= 0) throw new Error(`tokenizeConversation: segment-wise ids differ from whole-text ids at token ${i}`);
  }
  return out;
}

export function firstDifference(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
