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
 *
 * A model's own template (tokenizer_config.json `chat_template`, or `chat_template.jinja` as transformers 5 writes
 * it; a `chatTemplate` override wins) is usually not prefix-stable: Qwen3 renders the last assistant turn with a
 * <think> block that disappears once a later user turn exists, and groups consecutive tool results in one turn.
 * So for such templates nothing is rendered incrementally over history:
 *   - SFT (tokenizeConversation) renders the whole conversation once, cuts it before every turn-start special
 *     token (so the per-chunk ids equal the whole text's ids) and trains each chunk that opens with the generation
 *     prompt, after that prompt through the end-of-turn token. Where a template has generation tags this equals
 *     transformers' return_assistant_tokens_mask, except a token that merges the header's newline with the
 *     content's (masked here, see `straddled`); test/agent/template-families.test.ts checks it.
 *   - Rollouts (ChatTokens) render the opening turns (before the first assistant turn) exactly, then each later
 *     message as the template renders it right after a fixed one-user-turn context (BASE): its own turn, appended
 *     to the ids sampled so far, which are never re-tokenized. (Qwen3 then shows each tool result as its own turn.)
 * A template that drops `tools` or `tool_calls` (e.g. plain ChatML) is refused at load by a probe render.
 */
import { Environment, Interpreter, Template, parse, tokenize as jinjaTokenize } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Message, MessageInput } from '../../schemas/message.ts';
import type { ToolSpec } from '../../schemas/tool.ts';
import { CHAT_TEMPLATE, EOS_TOKEN } from './chat-template.ts';
import { resolveToolCallFormat } from './tool-formats.ts';

export interface ChatTokenizer {
  tokenizer: Tokenizer;
  template: Template;
  templateSource: string;
  /** Where the template came from: 'override', 'chat_template.jinja', 'tokenizer_config.json' or 'project default'. */
  templateOrigin: TemplateOrigin;
  /** Special-token strings templates may reference (bos_token, eos_token, …), as transformers passes them. */
  templateVars: Record<string, string>;
  /** The assistant's end-of-turn token (tokenizer_config eos_token, default <|im_end|>). */
  endOfTurnId: number;
  /** How the model writes tool calls: a format of tool-formats.ts, given or detected from the template. */
  toolCallFormat: string;
  specialTokens: string[];
  /** Where it was loaded from, for error messages. */
  source: string;
  /** Ids of recent long segments: system prompts and tool lists repeat across the trajectories of a world. */
  cache: Map<string, number[]>;
}

const PLACEHOLDER: ChatMessage = { role: 'user', content: '' };

/** Python's str.strip/lstrip/rstrip: with `chars`, only those characters are removed. */
export function pythonStrip(s: string, chars: string | undefined, left: boolean, right: boolean): string {
  if (chars === undefined) return left && right ? s.trim() : left ? s.trimStart() : s.trimEnd();
  const set = new Set(Array.from(chars));
  const cps = Array.from(s);
  let a = 0;
  let b = cps.length;
  if (left) while (a < b && set.has(cps[a])) a++;
  if (right) while (b > a && set.has(cps[b - 1])) b--;
  return cps.slice(a, b).join('');
}

/*
 * @huggingface/jinja 0.5 ignores the argument of strip/lstrip/rstrip (`'\t x'.lstrip('\n')` loses the tab), and
 * Qwen3's template strips reasoning with exactly these calls, so TS and transformers rendered different text. Its
 * string class is not exported: reach it through a rendered value and give its three methods Python's meaning.
 */
function patchJinjaStrip(): void {
  const value = new Interpreter(new Environment()).run(parse(jinjaTokenize("{{ 'x' }}"))) as object;
  const proto = Object.getPrototypeOf(value) as object;
  const desc = Object.getOwnPropertyDescriptor(proto, 'builtins');
  const StringValue = (proto as { constructor: new (v: string) => unknown }).constructor;
  if (!desc?.get || (desc.get as { patched?: boolean }).patched) return;
  const original = desc.get;
  const get = function (this: { value: string }) {
    const m = original.call(this) as Map<string, unknown> & { pyStrip?: true };
    if (m.pyStrip) return m;
    const FunctionValue = (m.get('strip') as { constructor: new (f: (args: { value?: unknown }[]) => unknown) => unknown }).constructor;
    const method = (left: boolean, right: boolean) => new FunctionValue((args) => {
      const chars = args[0]?.value;
      return new StringValue(pythonStrip(this.value, typeof chars === 'string' ? chars : undefined, left, right));
    });
    m.set('strip', method(true, true));
    m.set('lstrip', method(true, false));
    m.set('rstrip', method(false, true));
    m.pyStrip = true;
    return m;
  };
  (get as { patched?: boolean }).patched = true;
  Object.defineProperty(proto, 'builtins', { ...desc, get });
}
patchJinjaStrip();

/** The context a later turn of a model's own template is rendered after (see the file comment). */
const BASE: ChatMessage[] = [{ role: 'user', content: 'Hi.' }];
const PLACEHOLDER_CONTEXT: ChatMessage[] = [PLACEHOLDER];
const CACHE_MIN_CHARS = 256;
const CACHE_ENTRIES = 2048;

type ChatMessage = Message | MessageInput;
export type TemplateOrigin = 'override' | 'chat_template.jinja' | 'tokenizer_config.json' | 'project default';

/** A template's own Jinja source and where it came from; null when the dir has none. */
export function findChatTemplate(dir: string): { source: string; origin: TemplateOrigin } | null {
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return { source: readFileSync(jinja, 'utf8'), origin: 'chat_template.jinja' };
  const cfgPath = join(dir, 'tokenizer_config.json');
  if (!existsSync(cfgPath)) return null;
  const t = (JSON.parse(readFileSync(cfgPath, 'utf8')) as { chat_template?: unknown }).chat_template;
  if (typeof t === 'string') return { source: t, origin: 'tokenizer_config.json' };
  // transformers' named templates: [{name, template}]; a tool-calling pipeline wants 'tool_use' when there is one
  if (Array.isArray(t)) {
    const named = new Map((t as { name?: string; template?: string }[]).map((x) => [x.name, x.template]));
    const src = named.get('tool_use') ?? named.get('default');
    if (typeof src === 'string') return { source: src, origin: 'tokenizer_config.json' };
  }
  return null;
}

/**
 * transformers' {% generation %} … {% endgeneration %} only marks the assistant mask; @huggingface/jinja does not
 * know the tag, so it becomes an always-true block (keeping the tags' whitespace control).
 */
export function stripGenerationTags(source: string): string {
  return source
    .replace(/\{%(-?)\s*generation\s*(-?)%\}/g, '{%$1 if true $2%}')
    .replace(/\{%(-?)\s*endgeneration\s*(-?)%\}/g, '{%$1 endif $2%}');
}

const tokenString = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : undefined;

/**
 * Loads tokenizer.json and the chat template (override > chat_template.jinja > tokenizer_config.json > the
 * project's CHAT_TEMPLATE) from a model or tokenizer dir. Unless `requireTools` is false, a template that does not
 * render tools, tool calls and tool results is refused (see `checkToolsRendered`).
 */
export function loadChatTokenizer(dir: string, opts: { chatTemplate?: string; requireTools?: boolean; toolCallFormat?: string | null } = {}): ChatTokenizer {
  const tjPath = join(dir, 'tokenizer.json');
  if (!existsSync(tjPath)) throw new Error(`loadChatTokenizer: no tokenizer.json in ${dir}`);
  const tokenizerJson = JSON.parse(readFileSync(tjPath, 'utf8')) as { added_tokens?: { content: string; special: boolean }[] };
  const cfgPath = join(dir, 'tokenizer_config.json');
  const config = existsSync(cfgPath) ? (JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>) : {};
  const own = opts.chatTemplate === undefined ? findChatTemplate(dir) : null;
  const templateSource = opts.chatTemplate ?? own?.source ?? CHAT_TEMPLATE;
  const templateOrigin: TemplateOrigin = opts.chatTemplate !== undefined ? 'override' : own?.origin ?? 'project default';
  const toolCallFormat = resolveToolCallFormat(opts.toolCallFormat, templateSource, `tool_call_format for ${dir}`);
  const tokenizer = new Tokenizer(tokenizerJson, config);
  const eos = tokenString(config.eos_token) ?? EOS_TOKEN;
  const endOfTurnId = tokenizer.token_to_id(eos);
  if (endOfTurnId === undefined) throw new Error(`loadChatTokenizer: end-of-turn token ${eos} is not in ${tjPath}`);
  const specialTokens = (tokenizerJson.added_tokens ?? []).filter((t) => t.special).map((t) => t.content);
  const templateVars: Record<string, string> = {};
  for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    const v = tokenString(config[k]);
    if (v !== undefined) templateVars[k] = v;
  }
  let template: Template;
  try {
    template = new Template(stripGenerationTags(templateSource));
  } catch (e) {
    throw new Error(`chat template of ${dir} (${templateOrigin}) does not parse: ${(e as Error).message}; pass a valid Jinja template as params.chat_template`);
  }
  const ct: ChatTokenizer = {
    tokenizer, template, templateSource, templateOrigin, templateVars, endOfTurnId, specialTokens, source: dir, cache: new Map(),
    toolCallFormat,
  };
  if (opts.requireTools !== false) checkToolsRendered(ct);
  return ct;
}

const PROBE = { tool: 'zq_probe_tool', call: 'zq_probe_call', arg: 'zq_probe_argument', result: 'zq_probe_result' };

/** The probe render (see checkToolsRendered) through `render`; throws naming `where` when something is dropped. */
function probeRender(render: (messages: MessageInput[], tools: ToolSpec[]) => string, where: string, override: boolean): string {
  const tools: ToolSpec[] = [{ type: 'function', function: { name: PROBE.tool, description: 'probe', parameters: { type: 'object', properties: { x: { type: 'string' } }, required: ['x'] } } }];
  const messages: MessageInput[] = [
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: '', tool_calls: [{ id: 'call_0', name: PROBE.call, arguments: { x: PROBE.arg }, raw: '' }] },
    { role: 'tool', content: PROBE.result, tool_call_id: 'call_0', name: PROBE.call },
    { role: 'assistant', content: 'done' },
  ];
  const fix = override
    ? 'fix the template passed as params.chat_template'
    : 'pass a tools-aware template as params.chat_template (e.g. the project\'s CHAT_TEMPLATE from runtime/agent/chat-template.ts, ChatML with <tool_call> blocks)';
  let text: string;
  try {
    text = render(messages, tools);
  } catch (e) {
    throw new Error(`${where} fails on a conversation with a tool call: ${(e as Error).message}; ${fix}`);
  }
  const dropped = [
    !text.includes(PROBE.tool) && 'the tool list (`tools`)',
    !(text.includes(PROBE.call) && text.includes(PROBE.arg)) && "assistant tool calls (`message.tool_calls`)",
    !text.includes(PROBE.result) && 'tool results (role `tool`)',
  ].filter(Boolean);
  if (dropped.length) throw new Error(`${where} drops ${dropped.join(' and ')}: trained with it, tool-call turns would be empty; ${fix}`);
  return text;
}

/**
 * The probe of checkToolsRendered on a template alone (no tokenizer at hand, e.g. the one inside a GGUF file);
 * `vars` are the special-token strings the template may use.
 */
export function checkTemplateTools(source: string, where: string, o: { override?: boolean; vars?: Record<string, string> } = {}): void {
  let template: Template;
  try {
    template = new Template(stripGenerationTags(source));
  } catch (e) {
    throw new Error(`${where} does not parse: ${(e as Error).message}; pass a valid Jinja template as params.chat_template`);
  }
  probeRender((messages, tools) => template.render({ ...o.vars, messages: messages.map(plainMessage), tools, add_generation_prompt: false }), where, o.override ?? false);
}

/**
 * Renders a probe conversation (a tool list, an assistant tool call, its result) and refuses a template that drops
 * any of them: trained with it, every tool-call turn would become an empty assistant turn and the tool list would
 * vanish, silently (SmolLM2's plain ChatML does this).
 */
export function checkToolsRendered(ct: ChatTokenizer): void {
  const text = probeRender((m, t) => renderChat(ct, m, t), `the chat template of ${ct.source} (from ${ct.templateOrigin})`, ct.templateOrigin === 'override');
  // token-in/token-out relies on decode(encode(text)) = text: a normalizing tokenizer (lowercase, NFKC, …) would
  // train on text other than what the template rendered, and parse tool calls from altered text
  const back = decodeIds(ct, encodeText(ct, text));
  if (back !== text) {
    const at = [...text].findIndex((c, i) => [...back][i] !== c);
    throw new Error(`the tokenizer of ${ct.source} does not round-trip the text its chat template renders (decode(encode(text)) differs ` +
      `at character ${at}: ${JSON.stringify(text.slice(Math.max(0, at - 10), at + 10))} became ${JSON.stringify(back.slice(Math.max(0, at - 10), at + 10))}); ` +
      'use the model\'s fast tokenizer without a normalizer (tokenizer.json as transformers saves it for byte-level BPE models)');
  }
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
    ...ct.templateVars,
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
  /** Index in `ids` where each message's segment starts (a model's own template, SFT path: each turn's). */
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
  // renders keyed by the context array: the local template's placeholder context is one constant array, BASE another,
  // and an opening context is this.messages itself (then `n` tells it grew)
  private prefixRender: { n: number; msgs: ChatMessage[] | null; text: string } = { n: 0, msgs: null, text: '' };
  private header: { n: number; msgs: ChatMessage[]; text: string } | null = null;

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
    if (!this.local) return this.opening() ? [this.messages, this.tools] : [BASE, []];
    // any first message will do: later turns of CHAT_TEMPLATE never look at it, so skip the costly tools block
    return this.messages.length ? [PLACEHOLDER_CONTEXT, []] : [[], this.tools];
  }

  /** A model's own template: still before the first assistant turn, rendered exactly (see the file comment). */
  private opening(): boolean {
    return !this.messages.some((m) => m.role === 'assistant');
  }

  private renderPrefix(): string {
    const [msgs, tools] = this.context();
    // no messages = no text, even when a template would emit a default system block for them: that block then
    // belongs to the first message's segment
    if (msgs.length === 0) return '';
    if (this.prefixRender.n !== msgs.length || msgs !== this.prefixRender.msgs) this.prefixRender = { n: msgs.length, msgs, text: renderChat(this.ct, msgs, tools) };
    return this.prefixRender.text;
  }

  /** Text the template adds for `message` after the current context. */
  private segment(message: ChatMessage, where: string): string {
    const [msgs, tools] = this.context();
    return this.extension(this.renderPrefix(), renderChat(this.ct, [...msgs, message], tools), where);
  }

  private headerText(): string {
    const [msgs, tools] = this.context();
    if (!this.header || this.header.n !== msgs.length || this.header.msgs !== msgs) {
      const withPrompt = renderChat(this.ct, msgs, tools, true);
      this.header = { n: msgs.length, msgs, text: this.extension(this.renderPrefix(), withPrompt, 'generation prompt') };
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
      throw new Error(`tokenize ${where}: the chat template of ${this.ct.source} (${this.ct.templateOrigin}) rewrites ` +
        `earlier turns when this message is added${this.local || !this.opening() ? '' : ' before the first assistant turn'}, ` +
        'so the message cannot be appended to the tokens so far; pass a template whose turns extend each other as params.chat_template');
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

/**
 * Tokenizes a whole conversation (SFT path); `verify` also encodes the full text and checks the ids agree.
 * The project's template is rendered turn by turn (checked against one full render); a model's own template is
 * rendered whole and cut at turn starts (see the file comment).
 */
export function tokenizeConversation(ct: ChatTokenizer, messages: ChatMessage[], tools: ToolSpec[], opts: { verify?: boolean } = {}): TokenizedChat {
  let out: TokenizedChat;
  let text: string;
  if (ct.templateSource === CHAT_TEMPLATE) {
    const state = new ChatTokens(ct, tools);
    for (const m of messages) state.appendMessage(m);
    out = state.result();
    text = state.text;
    // one full render guards the context shortcut (cheap next to tokenizing)
    if (text !== renderChat(ct, messages, tools)) {
      throw new Error(`tokenizeConversation: per-turn renders do not add up to the full render (template from ${ct.source}); ` +
        'the template makes a turn depend on earlier turns other than the first');
    }
  } else {
    text = renderChat(ct, messages, tools);
    out = tokenizeRendered(ct, text, messages.filter((m) => m.role === 'assistant').length);
    // computed on first use: it renders every prefix (O(n²) text), more than the rest of this path costs, and the
    // SFT packer never reads it
    const turnStarts = out.messageStarts;
    let starts: number[] | null = null;
    Object.defineProperty(out, 'messageStarts', {
      enumerable: true, configurable: true,
      get: () => (starts ??= messageStartsIn(ct, messages, tools, text, turnStarts)),
      set: (v: number[]) => { starts = v; },
    });
  }
  if (opts.verify) {
    const whole = encodeText(ct, text);
    const i = firstDifference(whole, out.ids);
    if (i >= 0) throw new Error(`tokenizeConversation: segment-wise ids differ from whole-text ids at token ${i}`);
  }
  return out;
}

/**
 * Where each message starts in a whole render: after render(messages[..i]) when that is a prefix of the whole text,
 * at the turn (chunk) holding that offset; a message whose prefix render is not a prefix (a template that rewrites
 * history) gets the previous message's start.
 */
function messageStartsIn(ct: ChatTokenizer, messages: ChatMessage[], tools: ToolSpec[], text: string, chunkStarts: number[]): number[] {
  const chunkChars: number[] = [];
  let at = 0;
  const { turnStart } = turnMarkers(ct);
  for (let i = 0; i < chunkStarts.length; i++) {
    chunkChars.push(at);
    const next = text.indexOf(turnStart, at + 1);
    at = next < 0 ? text.length : next;
  }
  const starts: number[] = [];
  for (let i = 0; i < messages.length; i++) {
    let prefix: string | null = '';
    if (i > 0) {
      try { prefix = renderChat(ct, messages.slice(0, i), tools); } catch { prefix = null; }
    }
    if (prefix === null || !text.startsWith(prefix)) {
      starts.push(starts[i - 1] ?? 0);
      continue;
    }
    let c = 0;
    while (c + 1 < chunkChars.length && chunkChars[c + 1] <= prefix.length) c++;
    starts.push(chunkStarts[c] ?? 0);
  }
  return starts;
}

const MARKERS = new WeakMap<ChatTokenizer, { header: string; turnStart: string }>();

/** The generation prompt of a model's own template and the special token that opens every turn. */
function turnMarkers(ct: ChatTokenizer): { header: string; turnStart: string } {
  const known = MARKERS.get(ct);
  if (known) return known;
  const prev = renderChat(ct, BASE, []);
  const withPrompt = renderChat(ct, BASE, [], true);
  const header = withPrompt.startsWith(prev) ? withPrompt.slice(prev.length) : '';
  const turnStart = ct.specialTokens.filter((t) => header.startsWith(t)).sort((a, b) => b.length - a.length)[0];
  if (!header || !turnStart) {
    throw new Error(`the chat template of ${ct.source} (${ct.templateOrigin}) has a generation prompt ${JSON.stringify(header)} ` +
      'that does not start with a special token, so assistant turns cannot be located; pass a template whose turns open with a special token as params.chat_template');
  }
  MARKERS.set(ct, { header, turnStart });
  return { header, turnStart };
}

/** A whole rendered conversation → ids (chunk by chunk, each opening with a special token) and the assistant mask. */
function tokenizeRendered(ct: ChatTokenizer, text: string, assistants: number): TokenizedChat {
  const { header, turnStart } = turnMarkers(ct);
  const headerIds = encodeText(ct, header);
  const out: TokenizedChat = { ids: [], mask: [], messageStarts: [], straddled: 0 };
  let turns = 0;
  for (let at = 0; at < text.length;) {
    const next = text.indexOf(turnStart, at + 1);
    const chunk = text.slice(at, next < 0 ? text.length : next);
    at += chunk.length;
    const ids = encodeText(ct, chunk);
    let mask = ids.map(() => 0);
    if (chunk.startsWith(header)) {
      turns++;
      let k = 0;
      while (k < headerIds.length && ids[k] === headerIds[k]) k++;
      if (k < headerIds.length) { out.straddled++; k++; }
      const end = ids.lastIndexOf(ct.endOfTurnId);
      if (end < k) {
        throw new Error(`tokenizeConversation: assistant turn ${turns} rendered by the chat template of ${ct.source} has no ` +
          `end-of-turn token ${ct.tokenizer.id_to_token(ct.endOfTurnId)}; check eos_token in tokenizer_config.json`);
      }
      mask = ids.map((_, i) => (i >= k && i <= end ? 1 : 0));
    }
    out.messageStarts.push(out.ids.length);
    for (let i = 0; i < ids.length; i++) { out.ids.push(ids[i]); out.mask.push(mask[i]); }
  }
  if (turns !== assistants) {
    throw new Error(`tokenizeConversation: the chat template of ${ct.source} (${ct.templateOrigin}) rendered ${turns} assistant turns ` +
      `for ${assistants} assistant messages (it drops or merges some); pass a template that renders every assistant turn as params.chat_template`);
  }
  return out;
}

export function firstDifference(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
