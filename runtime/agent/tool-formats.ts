/*
 * The registry of tool-call formats: how each model family writes tool calls in an assistant turn, and the parser
 * that reads them back (never throwing: a malformed call becomes a ToolCall with `arguments: null`, `raw` and a
 * ParseError of the kinds parse.ts defines). A model's format is picked once, when its tokenizer is loaded
 * (loadChatTokenizer): a `tool_call_format` param wins, else the one its chat template renders (detect), else
 * Hermes, which the project's own CHAT_TEMPLATE writes. The rollout loop, `agentforge serve` and evaluation all parse
 * through `parseTurn(ct, text)`.
 *
 *   hermes       Qwen2/2.5/3, Hermes, the project's template:  text\n<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>
 *   llama3-json  Llama 3.1/3.2 (custom tools):  [<|python_tag|>]{"name": …, "parameters": {…}}, calls on their own
 *                lines, separated by ";" (what Llama 3.2 writes for parallel calls) or in a JSON list
 *   mistral      Mistral v3 ([TOOL_CALLS][{"name": …, "arguments": {…}}, …]) and v11+ ([TOOL_CALLS]name[ARGS]{…})
 */
import type { ToolCall } from '../../schemas/message.ts';
import { guessName, parseAssistant, parseCallBody, stripEndMarkers, type ParseError, type ParsedTurn } from './parse.ts';

export interface ToolCallFormat {
  readonly name: string;
  /** What a turn with calls looks like (for error messages and docs). */
  readonly example: string;
  /** The family's end-of-turn texts; the turn is cut at the first (parseTurn adds the tokenizer's own). */
  readonly endMarkers: readonly string[];
  /** True when a chat template's Jinja source renders calls in this format. */
  detect(templateSource: string): boolean;
  parse(text: string, idPrefix?: string, endMarkers?: readonly string[]): ParsedTurn;
}

const HERMES_END = ['<|im_end|>', '<|endoftext|>'];
const LLAMA_END = ['<|eot_id|>', '<|eom_id|>', '<|end_of_text|>'];
const PYTHON_TAG = '<|python_tag|>';
const MISTRAL_CALLS = '[TOOL_CALLS]';
const MISTRAL_ARGS = '[ARGS]';

const hermes: ToolCallFormat = {
  name: 'hermes',
  example: 'text\\n<tool_call>\\n{"name": "f", "arguments": {"x": 1}}\\n</tool_call>',
  endMarkers: HERMES_END,
  detect: (src) => src.includes('<tool_call>'),
  parse: (text, idPrefix = 'call_', endMarkers = HERMES_END) => parseAssistant(text, idPrefix, endMarkers),
};

const llama3Json: ToolCallFormat = {
  name: 'llama3-json',
  example: '{"name": "f", "parameters": {"x": 1}} (optionally after <|python_tag|>)',
  endMarkers: LLAMA_END,
  // Meta's 3.1/3.2 templates render built-in tools after <|python_tag|> and custom ones as {"name", "parameters"}
  detect: (src) => src.includes(PYTHON_TAG) || (src.includes('<|start_header_id|>') && src.includes('"parameters"')),
  parse: parseLlama3Json,
};

const mistral: ToolCallFormat = {
  name: 'mistral',
  example: '[TOOL_CALLS][{"name": "f", "arguments": {"x": 1}}]',
  endMarkers: ['</s>'],
  detect: (src) => src.includes(MISTRAL_CALLS),
  parse: parseMistral,
};

/** Every known format, in detection order (Hermes first: Qwen templates also mention JSON "parameters"). */
export const TOOL_CALL_FORMATS: readonly ToolCallFormat[] = [hermes, mistral, llama3Json];
const ALIASES: Record<string, string> = { qwen: 'hermes', chatml: 'hermes', llama3: 'llama3-json', 'llama3.1': 'llama3-json', 'llama3.2': 'llama3-json' };

/** The format named `name` (or an alias: qwen, llama3, …); an unknown name is an error listing the known ones. */
export function toolCallFormat(name: string, where = 'tool_call_format'): ToolCallFormat {
  const f = TOOL_CALL_FORMATS.find((x) => x.name === (ALIASES[name] ?? name));
  if (!f) {
    throw new Error(`${where}: unknown tool-call format '${name}'; known formats: ${TOOL_CALL_FORMATS.map((x) => `${x.name} (${x.example})`).join(', ')}` +
      `; aliases: ${Object.entries(ALIASES).map(([a, n]) => `${a} = ${n}`).join(', ')}`);
  }
  return f;
}

/** The format a chat template renders calls in; Hermes when it shows none (the project's own template writes it). */
export function detectToolCallFormat(templateSource: string): ToolCallFormat {
  return TOOL_CALL_FORMATS.find((f) => f.detect(templateSource)) ?? hermes;
}

/** The format's name for a tokenizer: `name` when given (checked), else detected from the template. */
export function resolveToolCallFormat(name: string | null | undefined, templateSource: string, where?: string): string {
  return name ? toolCallFormat(name, where).name : detectToolCallFormat(templateSource).name;
}

/** What parseTurn needs of a ChatTokenizer (tokenize.ts). */
export interface FormatHolder {
  toolCallFormat: string;
  tokenizer: { id_to_token(id: number): string | undefined };
  endOfTurnId: number;
}

/** Parses one assistant turn with the tokenizer's format, cut at its end-of-turn token as well as the family's. */
export function parseTurn(ct: FormatHolder, text: string, idPrefix = 'call_'): ParsedTurn {
  const f = toolCallFormat(ct.toolCallFormat);
  const eos = ct.tokenizer.id_to_token(ct.endOfTurnId);
  return f.parse(text, idPrefix, eos && !f.endMarkers.includes(eos) ? [...f.endMarkers, eos] : f.endMarkers);
}

/* ------------------------------------------------ parsers ------------------------------------------------ */

/**
 * Index of the bracket that closes the one at `start` ({ or [), skipping JSON strings; -1 when the text ends first
 * (output cut off).
 */
export function closingBracket(s: string, start: number): number {
  let depth = 0;
  for (let i = start; i < s.length; i++) {
    const c = s[i];
    if (c === '"') {
      for (i++; i < s.length && s[i] !== '"'; i++) if (s[i] === '\\') i++;
      if (i >= s.length) return -1;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      if (--depth === 0) return i;
    }
  }
  return -1;
}

class Calls {
  readonly tool_calls: ToolCall[] = [];
  readonly errors: ParseError[] = [];
  constructor(private readonly idPrefix: string, public content: string) {}
  private get index(): number { return this.tool_calls.length; }
  private get id(): string { return `${this.idPrefix}${this.index}`; }
  body(raw: string): void { this.tool_calls.push(parseCallBody(raw, this.id, this.index, this.errors)); }
  bad(raw: string, kind: ParseError['kind'], message: string, name = guessName(raw)): void {
    this.errors.push({ call: this.index, kind, message: `tool call ${this.index}: ${message}` });
    this.tool_calls.push({ id: this.id, name, arguments: null, raw });
  }
  extra(text: string): void {
    this.errors.push({ call: null, kind: 'text_between_calls', message: `text after tool call ${this.index - 1} was kept as content` });
    this.content = this.content ? `${this.content}\n${text}` : text;
  }
  result(): ParsedTurn { return { content: this.content, tool_calls: this.tool_calls, errors: this.errors }; }
}

const skipSeparators = (s: string, pos: number, seps: RegExp): number => {
  while (pos < s.length && seps.test(s[pos])) pos++;
  return pos;
};

/*
 * Llama 3.1/3.2: the calls start at <|python_tag|>, else at the first line that opens a {"name": …} object; text
 * before them is the content (less the newline that separates it from the first call, as in the Hermes template).
 */
function parseLlama3Json(text: string, idPrefix = 'call_', endMarkers: readonly string[] = LLAMA_END): ParsedTurn {
  const body = stripEndMarkers(text, endMarkers);
  const tag = body.indexOf(PYTHON_TAG);
  let at = tag;
  if (at < 0) {
    const m = /(^|\n)[ \t]*(?:\[\s*)?\{\s*"name"\s*:/.exec(body);
    if (!m) return { content: body, tool_calls: [], errors: [] };
    at = m.index + m[1].length;
  }
  const calls = new Calls(idPrefix, body.slice(0, at).replace(/\n$/, ''));
  const rest = tag >= 0 ? body.slice(at + PYTHON_TAG.length) : body.slice(at);
  for (let pos = 0; ;) {
    pos = skipSeparators(rest, pos, /[\s;,[\]]/);
    if (pos >= rest.length) break;
    if (rest[pos] !== '{') {
      const left = rest.slice(pos).trim();
      // <|python_tag|> followed by anything but JSON: a built-in tool's Python call (brave_search.call(query=…))
      if (calls.tool_calls.length === 0) calls.bad(left, 'not_an_object', `expected {"name": ..., "parameters": {...}} after ${PYTHON_TAG}`, /^(\w+)\.call\(/.exec(left)?.[1] ?? '');
      else calls.extra(left);
      break;
    }
    const end = closingBracket(rest, pos);
    if (end < 0) {
      calls.bad(rest.slice(pos).trim(), 'unclosed_tool_call', 'the JSON object is not closed (output cut off?)');
      break;
    }
    calls.body(rest.slice(pos, end + 1));
    pos = end + 1;
  }
  return calls.result();
}

/* Mistral: [TOOL_CALLS] then a JSON list of call objects (v3), or name[ARGS]{…} per call (v11+). */
function parseMistral(text: string, idPrefix = 'call_', endMarkers: readonly string[] = ['</s>']): ParsedTurn {
  const body = stripEndMarkers(text, endMarkers);
  const at = body.indexOf(MISTRAL_CALLS);
  if (at < 0) return { content: body, tool_calls: [], errors: [] };
  const calls = new Calls(idPrefix, body.slice(0, at).trimEnd());
  const rest = body.slice(at + MISTRAL_CALLS.length).trimStart();
  if (rest.startsWith('[') && !rest.startsWith(MISTRAL_ARGS)) {
    const close = closingBracket(rest, 0);
    const list = close < 0 ? rest : rest.slice(0, close);
    for (let pos = 1; ;) {
      pos = skipSeparators(list, pos, /[\s,]/);
      if (pos >= list.length) {
        if (close < 0) calls.bad(list.slice(1).trim(), 'unclosed_tool_call', 'the call list has no closing ] (output cut off?)');
        break;
      }
      if (list[pos] !== '{') {
        calls.bad(list.slice(pos).trim(), 'not_an_object', 'expected {"name": ..., "arguments": {...}} in the call list');
        break;
      }
      const end = closingBracket(list, pos);
      if (end < 0) {
        calls.bad(list.slice(pos).trim(), 'unclosed_tool_call', 'the JSON object is not closed (output cut off?)');
        break;
      }
      calls.body(list.slice(pos, end + 1));
      pos = end + 1;
    }
    const after = close < 0 ? '' : rest.slice(close + 1).trim();
    if (after) calls.extra(after);
    return calls.result();
  }
  // v11+: name[ARGS]{…}, each further call after its own [TOOL_CALLS]
  for (const part of rest.split(MISTRAL_CALLS)) {
    const m = /^\s*([\w.-]+)\[ARGS\]/.exec(part);
    if (!m) {
      calls.bad(part.trim(), 'not_an_object', `expected name${MISTRAL_ARGS}{...} or a JSON list after ${MISTRAL_CALLS}`);
      continue;
    }
    const argsAt = m[0].length;
    const argsText = part.slice(argsAt).trim();
    const end = argsText.startsWith('{') ? closingBracket(argsText, 0) : -1;
    if (argsText.startsWith('{') && end < 0) {
      calls.bad(part.trim(), 'unclosed_tool_call', 'the arguments object is not closed (output cut off?)', m[1]);
      continue;
    }
    const args = end < 0 ? argsText : argsText.slice(0, end + 1);
    calls.body(`{"name": ${JSON.stringify(m[1])}, "arguments": ${args || '{}'}}`);
    const after = end < 0 ? '' : argsText.slice(end + 1).trim();
    if (after) calls.extra(after);
  }
  return calls.result();
}
