/*
 * Model output (the text of one assistant turn) → content + tool calls, never throwing: a malformed call becomes a
 * ToolCall with `arguments: null` and `raw` holding what the model wrote, plus a ParseError the rollout loop can
 * feed back to the model. parseAssistant reads Qwen/Hermes `<tool_call>` blocks, the inverse of the assistant branch
 * of CHAT_TEMPLATE: parse(render(m)) == m for any well-formed message (tested). Other model families write calls
 * differently: tool-formats.ts is the registry the loop, `serve` and evaluation parse through; its formats share
 * parseCallBody.
 */
import type { Message, ToolCall } from '../../schemas/message.ts';
import { isObj, parsePyJson, type Py } from '../worlds/tau/pyvalue.ts';

export interface ParseError {
  /** Index of the tool call it concerns, or null for the turn as a whole. */
  call: number | null;
  kind: 'invalid_json' | 'not_an_object' | 'missing_name' | 'bad_arguments' | 'unclosed_tool_call' | 'text_between_calls';
  message: string;
}

export interface ParsedTurn {
  content: string;
  tool_calls: ToolCall[];
  errors: ParseError[];
}

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';
const END_MARKERS = ['<|im_end|>', '<|endoftext|>'];

/**
 * Parses an assistant turn written in Qwen/Hermes `<tool_call>` blocks. `idPrefix` names calls `${idPrefix}${i}`
 * (ids must be unique within a trajectory); `endMarkers`: end-of-turn texts cut off with what follows them.
 */
export function parseAssistant(text: string, idPrefix = 'call_', endMarkers: readonly string[] = END_MARKERS): ParsedTurn {
  const body = stripEndMarkers(text, endMarkers);
  const errors: ParseError[] = [];
  const tool_calls: ToolCall[] = [];
  const first = body.indexOf(OPEN);
  let content = first < 0 ? body : body.slice(0, first);
  if (first >= 0 && content.endsWith('\n')) content = content.slice(0, -1); // the template's separator
  let pos = first;
  while (pos >= 0) {
    const start = pos + OPEN.length;
    const end = body.indexOf(CLOSE, start);
    const index = tool_calls.length;
    if (end < 0) {
      const raw = trimNewlines(body.slice(start));
      tool_calls.push({ id: `${idPrefix}${index}`, name: guessName(raw), arguments: null, raw });
      errors.push({ call: index, kind: 'unclosed_tool_call', message: `tool call ${index} has no ${CLOSE} (output cut off?)` });
      break;
    }
    const raw = trimNewlines(body.slice(start, end));
    tool_calls.push(parseCallBody(raw, `${idPrefix}${index}`, index, errors));
    pos = body.indexOf(OPEN, end + CLOSE.length);
    const between = body.slice(end + CLOSE.length, pos < 0 ? body.length : pos);
    if (between.trim()) {
      errors.push({ call: null, kind: 'text_between_calls', message: `text after tool call ${index} was kept as content` });
      content = content ? `${content}\n${between.trim()}` : between.trim();
    }
  }
  return { content, tool_calls, errors };
}

/** A parsed turn as an assistant Message (errors are the caller's to record). */
export function toAssistantMessage(parsed: ParsedTurn): Message {
  return { role: 'assistant', content: parsed.content, tool_calls: parsed.tool_calls, tool_call_id: null, name: null };
}

/**
 * One call body `{"name": …, "arguments" | "parameters": {…}}` (the JSON text the model wrote) → a ToolCall; what is
 * wrong with it is pushed to `errors` and the call keeps `raw` with `arguments: null`.
 */
export function parseCallBody(raw: string, id: string, index: number, errors: ParseError[]): ToolCall {
  const bad = (kind: ParseError['kind'], message: string): ToolCall => {
    errors.push({ call: index, kind, message: `tool call ${index}: ${message}` });
    return { id, name: guessName(raw), arguments: null, raw };
  };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    return bad('invalid_json', `invalid JSON (${(e as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('not_an_object', 'expected {"name": ..., "arguments": {...}}');
  const obj = value as Record<string, unknown>;
  if (typeof obj.name !== 'string' || !obj.name) return bad('missing_name', 'missing "name"');
  let args = argumentsOf(obj);
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args); // some models emit arguments as a JSON string
    } catch {
      return bad('bad_arguments', '"arguments" is a string that is not JSON');
    }
  }
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return bad('bad_arguments', '"arguments" must be an object');
  if (nestedDeeperThan(args, MAX_DEPTH)) return bad('bad_arguments', `"arguments" are nested deeper than ${MAX_DEPTH} levels`);
  return { id, name: obj.name, arguments: args as Record<string, unknown>, raw };
}

/** Deeper arguments than any tool takes; rendering, hashing or validating them could overflow the stack. */
export const MAX_DEPTH = 64;

function nestedDeeperThan(v: unknown, limit: number): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (limit === 0) return true;
  for (const x of Object.values(v)) if (nestedDeeperThan(x, limit - 1)) return true;
  return false;
}

/** Best-effort tool name from malformed JSON, so errors can say which tool the model meant. */
export function guessName(raw: string): string {
  return /"name"\s*:\s*"([^"\\]*)"/.exec(raw)?.[1] ?? '';
}

/** The text before the first end-of-turn marker. */
export function stripEndMarkers(text: string, markers: readonly string[] = END_MARKERS): string {
  for (const m of markers) {
    const at = text.indexOf(m);
    if (at >= 0) text = text.slice(0, at);
  }
  return text;
}

function trimNewlines(s: string): string {
  return s.replace(/^\n/, '').replace(/\n$/, '');
}

/*
 * The one definition of a call body's arguments: `arguments`, else `parameters` (what some models and BFCL's
 * prompting format write), else none ({}). Both the parser above and callArguments below read bodies with it.
 */
export function argumentsOf<T>(body: Record<string, T>): T | Record<string, never> {
  if (Object.hasOwn(body, 'arguments') && body.arguments != null) return body.arguments;
  if (Object.hasOwn(body, 'parameters') && body.parameters != null) return body.parameters;
  return {};
}

/** A JSON value that is a whole call body `{"name": <the call's name>, "arguments"?: …}` rather than its arguments. */
const isCallBody = (v: Py, name: string): v is Record<string, Py> =>
  isObj(v) && v.name === name && (Object.hasOwn(v, 'arguments') || Object.hasOwn(v, 'parameters') || Object.keys(v).length === 1);

export type CallArgs = { ok: true; args: Py } | { ok: false; error: string };

/*
 * The arguments of a tool call as Python's json.loads would see them (1.0 stays a float), for evaluators that
 * compare values as upstream does. Engines fill ToolCall.raw differently: the OpenAI-compatible engine keeps the
 * `arguments` string, the local parser keeps the whole `{"name": …, "arguments": …}` body; both are accepted, and a
 * body's arguments are read with argumentsOf, as the parser reads them. A text that is not JSON is an error.
 */
export function callArguments(call: ToolCall): CallArgs {
  const raw = call.raw?.trim() ?? '';
  if (!raw) return { ok: true, args: (call.arguments ?? {}) as Py };
  let v: Py;
  try {
    v = parsePyJson(raw, 'tool call arguments');
  } catch (e) {
    if (call.arguments) return { ok: true, args: call.arguments as Py };
    return { ok: false, error: `arguments are not JSON: ${(e as Error).message}` };
  }
  if (!isCallBody(v, call.name)) return { ok: true, args: v };
  const inner = argumentsOf(v) as Py;
  if (typeof inner !== 'string') return { ok: true, args: inner };
  try {
    return { ok: true, args: parsePyJson(inner, 'tool call arguments') };
  } catch (e) {
    return { ok: false, error: `arguments are not JSON: ${(e as Error).message}` };
  }
}
