import type { Message } from '../../../schemas/message.ts';
import { callArguments } from '../../agent/parse.ts';
import { isObj, newObj, parsePyJson, type Py, type PyObj } from '../../worlds/tau/pyvalue.ts';
import { parsePythonCalls } from './pycall.ts';

/*
 * A model's reply as BFCL's decoded form [{name: {param: value}}]. Native tool calls are read first (what BFCL's
 * function-calling handlers decode); a reply without tool calls is tried as a JSON list of calls and then as
 * BFCL's prompting format, Python call syntax `[f(a=1), g(b="x")]`. Any failure is a decode error with a reason.
 */
export type Decoded = { ok: true; calls: PyObj[] } | { ok: false; error: string };

export function decodeReply(m: Message): Decoded {
  if (m.tool_calls.length > 0) {
    const calls: PyObj[] = [];
    for (const c of m.tool_calls) {
      const a = callArguments(c);
      if (!a.ok) return { ok: false, error: `tool call ${c.name}: ${a.error}` };
      calls.push(newObj([[c.name, a.args]]));
    }
    return { ok: true, calls };
  }
  const text = stripFence(m.content.trim());
  if (!text) return { ok: false, error: 'empty reply, no tool call' };
  if (text.startsWith('[') || text.startsWith('{')) {
    try { return fromJson(parsePyJson(text, 'reply')); } catch { /* not JSON: try Python syntax */ }
  }
  try { return { ok: true, calls: parsePythonCalls(text) }; } catch (e) { return { ok: false, error: `not a function call: ${(e as Error).message}` }; }
}

function stripFence(t: string): string {
  const m = /^```\w*\n([\s\S]*?)\n?```$/.exec(t);
  return m ? m[1].trim() : t;
}

function fromJson(v: Py): Decoded {
  const items = Array.isArray(v) ? v : [v];
  const calls: PyObj[] = [];
  for (const it of items) {
    if (!isObj(it)) return { ok: false, error: 'JSON reply is not a list of calls' };
    if (typeof it.name === 'string' && (isObj(it.arguments) || isObj(it.parameters))) calls.push(newObj([[it.name, (it.arguments ?? it.parameters) as Py]]));
    else calls.push(it);
  }
  return { ok: true, calls };
}

/** BFCL's is_function_calling_format_output: a list of dicts. */
export const isCallList = (calls: unknown): boolean => Array.isArray(calls) && calls.every((c) => isObj(c as Py));

/** BFCL's is_empty_output for relevance detection: [] or [{}] count as no call. */
export const isEmptyOutput = (calls: PyObj[]): boolean => calls.length === 0 || (calls.length === 1 && Object.keys(calls[0]).length === 0);
