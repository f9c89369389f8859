import type { ToolCall } from '../../schemas/message.ts';
import { isObj, parsePyJson, type Py } from '../worlds/tau/pyvalue.ts';

/*
 * The arguments of a model's tool call as Python's json.loads would see them (1.0 stays a float). Engines fill
 * ToolCall.raw differently: the OpenAI-compatible engine keeps the `arguments` string, the local parser keeps the
 * whole `{"name": …, "arguments": …}` body; both are accepted. A text that is not JSON is an error, not a throw.
 */
export type CallArgs = { ok: true; args: Py } | { ok: false; error: string };

export function callArguments(call: ToolCall): CallArgs {
  const raw = call.raw?.trim() ?? '';
  if (!raw) return call.arguments ? { ok: true, args: call.arguments as Py } : { ok: true, args: {} };
  let v: Py;
  try {
    v = parsePyJson(raw, 'tool call arguments');
  } catch (e) {
    if (call.arguments) return { ok: true, args: call.arguments as Py };
    return { ok: false, error: `arguments are not JSON: ${(e as Error).message}` };
  }
  if (isObj(v) && v.name === call.name && ('arguments' in v || 'parameters' in v)) {
    const inner = v.arguments ?? v.parameters;
    if (typeof inner !== 'string') return { ok: true, args: inner };
    try { return { ok: true, args: parsePyJson(inner, 'tool call arguments') }; } catch (e) { return { ok: false, error: `arguments are not JSON: ${(e as Error).message}` }; }
  }
  return { ok: true, args: v };
}
