import { basename } from 'node:path';
import type { Message, ToolCall } from '../../schemas/message.ts';
import { ToolSpec } from '../../schemas/tool.ts';
import type { Trajectory } from '../../schemas/trajectory.ts';
import { parseArguments } from '../agent/engines/openai-chat.ts';

/*
 * Open data → Trajectory. Three row shapes: OpenAI `{messages, tools}`, ShareGPT `{conversations: [{from, value}]}`
 * with function_call/observation turns, and Hermes function-calling (`<tools>` in the system turn, `<tool_call>`
 * and `<tool_response>` blocks). A row that cannot be mapped becomes a quarantined trajectory (finish_reason
 * 'error', one TurnError of kind 'quarantine' naming file, line and field), so nothing is silently dropped.
 */

export type ImportFormat = 'auto' | 'openai' | 'sharegpt' | 'hermes';

class RowError extends Error {}
const fail = (where: string, what: string): never => { throw new RowError(`${where}: ${what}`); };
const msg = (role: Message['role'], content: string, extra: Partial<Message> = {}): Message =>
  ({ role, content, tool_calls: [], tool_call_id: null, name: null, ...extra });
const str = (v: unknown, where: string): string => (typeof v === 'string' ? v : v == null ? '' : fail(where, `expected a string, got ${typeof v}`));

function openaiRow(row: any): { messages: Message[]; tools: unknown[] } {
  if (!Array.isArray(row.messages)) fail('messages', 'missing or not an array');
  // ids of earlier calls not yet answered: a tool result must answer one of them, as ShareGPT and Hermes rows must
  const open = new Map<string, string>();
  const messages = row.messages.map((m: any, i: number): Message => {
    const at = `messages[${i}]`;
    if (!['system', 'user', 'assistant', 'tool'].includes(m?.role)) fail(`${at}.role`, `unknown role ${JSON.stringify(m?.role)}`);
    const calls: ToolCall[] = (m.tool_calls ?? []).map((c: any, j: number) => {
      const raw = typeof c?.function?.arguments === 'string' ? c.function.arguments : JSON.stringify(c?.function?.arguments ?? {});
      const args = parseArguments(raw) ?? fail(`${at}.tool_calls[${j}].function.arguments`, 'not a JSON object');
      return { id: String(c?.id ?? `call_${i}_${j}`), name: str(c?.function?.name, `${at}.tool_calls[${j}].function.name`) || fail(`${at}.tool_calls[${j}]`, 'no function name'), arguments: args, raw };
    });
    for (const c of calls) {
      if (open.has(c.id)) fail(`${at}.tool_calls`, `call id ${JSON.stringify(c.id)} is already used by an unanswered call`);
      open.set(c.id, c.name);
    }
    if (m.role === 'tool') answer(open, m.tool_call_id, `${at}.tool_call_id`);
    return msg(m.role, str(m.content, `${at}.content`), { tool_calls: calls, tool_call_id: m.tool_call_id ?? null, name: m.name ?? null });
  });
  return { messages, tools: Array.isArray(row.tools) ? row.tools : [] };
}

/** A tool result's tool_call_id must name an earlier call that has no result yet. */
function answer(open: Map<string, string>, id: unknown, where: string): void {
  if (id == null || id === '') fail(where, 'missing: a tool result must say which earlier tool call it answers');
  const known = [...open.keys()];
  if (!open.delete(String(id))) {
    fail(where, `${JSON.stringify(id)} answers no earlier tool call${known.length ? ` (open calls: ${known.map((k) => JSON.stringify(k)).join(', ')})` : ' (no call is waiting for a result)'}`);
  }
}

const ROLE: Record<string, Message['role']> = { human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', system: 'system', observation: 'tool', tool: 'tool', function_response: 'tool' };

/** Tool-call JSON as written by ShareGPT/Hermes exporters; Hermes dumps sometimes use Python-style single quotes. */
function parseCall(text: string, where: string): { name: string; arguments: Record<string, unknown> } {
  let v: any;
  try { v = JSON.parse(text); } catch {
    try { v = JSON.parse(text.replace(/'/g, '"')); } catch { fail(where, `tool call is not valid JSON: ${text.slice(0, 60)}`); }
  }
  if (typeof v?.name !== 'string') fail(where, 'tool call has no "name"');
  const args = typeof v.arguments === 'string' ? parseArguments(v.arguments) : v.arguments ?? {};
  if (!args || typeof args !== 'object' || Array.isArray(args)) fail(where, 'tool call "arguments" is not a JSON object');
  return { name: v.name, arguments: args };
}

function conversationRow(row: any, hermes: boolean): { messages: Message[]; tools: unknown[] } {
  if (!Array.isArray(row.conversations)) fail('conversations', 'missing or not an array');
  const messages: Message[] = [];
  let tools: unknown[] = typeof row.tools === 'string' ? JSON.parse(row.tools) : Array.isArray(row.tools) ? row.tools : [];
  if (typeof row.system === 'string' && row.system) messages.push(msg('system', row.system));
  const open: ToolCall[] = [];
  row.conversations.forEach((t: any, i: number) => {
    const at = `conversations[${i}]`;
    const value = str(t?.value, `${at}.value`);
    if (t?.from === 'function_call') {
      const c = parseCall(value, `${at}.value`);
      const call = { id: `call_${i}`, ...c, raw: JSON.stringify(c.arguments) };
      open.push(call);
      return void messages.push(msg('assistant', '', { tool_calls: [call] }));
    }
    const role = ROLE[t?.from] ?? fail(`${at}.from`, `unknown speaker ${JSON.stringify(t?.from)}`);
    if (hermes && role === 'system') {
      const m = /<tools>([\s\S]*?)<\/tools>/.exec(value);
      if (m) { try { tools = JSON.parse(m[1]); } catch { fail(`${at}.value`, '<tools> block is not valid JSON'); } }
    }
    if (hermes && role === 'assistant') {
      const calls = [...value.matchAll(/<tool_call>([\s\S]*?)<\/tool_call>/g)].map((m, j) => {
        const c = parseCall(m[1].trim(), `${at}.value <tool_call> ${j}`);
        return { id: `call_${i}_${j}`, ...c, raw: JSON.stringify(c.arguments) };
      });
      open.push(...calls);
      return void messages.push(msg('assistant', value.replace(/<tool_call>[\s\S]*?<\/tool_call>/g, '').trim(), { tool_calls: calls }));
    }
    if (role === 'tool') {
      const call = open.shift() ?? fail(at, 'tool result without a preceding tool call');
      const body = hermes ? value.replace(/<\/?tool_response>/g, '').trim() : value;
      return void messages.push(msg('tool', body, { tool_call_id: call.id, name: call.name }));
    }
    messages.push(msg(role, value));
  });
  return { messages, tools };
}

export function detectFormat(row: any): Exclude<ImportFormat, 'auto'> {
  if (Array.isArray(row?.messages)) return 'openai';
  if (Array.isArray(row?.conversations)) {
    return row.conversations.some((t: any) => typeof t?.value === 'string' && /<tool_call>|<tools>/.test(t.value)) ? 'hermes' : 'sharegpt';
  }
  return fail('(row)', 'neither "messages" (OpenAI) nor "conversations" (ShareGPT/Hermes)');
}

function normTools(tools: unknown[]): ToolSpec[] {
  return tools.map((t: any, i) => {
    const r = ToolSpec.safeParse(t?.function ? t : { type: 'function', function: t });
    return r.success ? r.data : fail(`tools[${i}]`, r.error.issues[0].message);
  });
}

export interface ImportContext { file: string; line: number; world: string; source: string }

/** One decoded row (or an undecodable line, passed as an Error) → one trajectory, quarantined if anything is wrong. */
export function importRow(row: unknown, format: ImportFormat, c: ImportContext): Trajectory {
  const id = `import:${basename(c.file)}:${c.line}`;
  const base = { id, task_id: id, world: c.world, source: c.source, teacher: 'import', seed: 0, policy_version: 0, reward: null, reward_components: {}, difficulty: 1, split: 'train' as const };
  try {
    if (row instanceof Error) throw new RowError(row.message);
    if (!row || typeof row !== 'object') fail('(row)', 'not a JSON object');
    const r = row as any;
    const f = format === 'auto' ? detectFormat(r) : format;
    const { messages, tools } = f === 'openai' ? openaiRow(r) : conversationRow(r, f === 'hermes');
    if (!messages.some((m) => m.role === 'assistant')) fail('(row)', 'no assistant turn');
    const taskId = typeof r.id === 'string' || typeof r.id === 'number' ? `import:${r.id}` : id;
    return { ...base, task_id: taskId, messages, tools: normTools(tools), turns: messages.filter((m) => m.role === 'assistant').length, finish_reason: 'answered', errors: [] };
  } catch (e) {
    const why = e instanceof RowError || e instanceof SyntaxError ? e.message : `unexpected: ${(e as Error).message}`;
    return { ...base, messages: [], tools: [], turns: 0, finish_reason: 'error', errors: [{ turn: 0, kind: 'quarantine', message: `${c.file}:${c.line}: ${why}` }] };
  }
}
