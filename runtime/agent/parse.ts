/*
 * Model output (the text of one assistant turn) → content + tool calls, never throwing: a malformed call becomes a
 * ToolCall with `arguments: null` and `raw` holding what the model wrote, plus a ParseError the rollout loop can
 * feed back to the model. Inverse of the assistant branch of CHAT_TEMPLATE: parse(render(m)) == m for any
 * well-formed message (tested).
 */
import type { Message, ToolCall } from '../../schemas/message.ts';

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

/** Parses an assistant turn. `idPrefix` names calls `${idPrefix}${i}` (ids must be unique within a trajectory). */
export function parseAssistant(text: string, idPrefix = 'call_'): ParsedTurn {
  const body = stripEndMarker(text);
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
    tool_calls.push(parseCall(raw, `${idPrefix}${index}`, index, errors));
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

function parseCall(raw: string, id: string, index: number, errors: ParseError[]): ToolCall {
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
  let args = obj.arguments ?? {};
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args); // some models emit arguments as a JSON string
    } catch {
      return bad('bad_arguments', '"arguments" is a string that is not JSON');
    }
  }
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return bad('bad_arguments', '"arguments" must be an object');
  return { id, name: obj.name, arguments: args as Record<string, unknown>, raw };
}

/** Best-effort tool name from malformed JSON, so errors can say which tool the model meant. */
function guessName(raw: string): string {
  return /"name"\s*:\s*"([^"\\]*)"/.exec(raw)?.[1] ?? '';
}

function stripEndMarker(text: string): string {
  for (const m of END_MARKERS) {
    const at = text.indexOf(m);
    if (at >= 0) text = text.slice(0, at);
  }
  return text;
}

function trimNewlines(s: string): string {
  return s.replace(/^\n/, '').replace(/\n$/, '');
}
