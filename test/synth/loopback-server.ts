import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Message } from '../../schemas/message.ts';
import type { Task } from '../../schemas/task.ts';
import { scriptedTeacher, scriptedUser } from '../../runtime/agent/scripted.ts';

/*
 * A real OpenAI-compatible chat-completions server on 127.0.0.1 for tests and benches. It plays the scripted
 * teacher (and, for user-role keys, the scripted user) server-side, keyed by the Idempotency-Key header
 * `${taskId}:s${seed}:a${turn}` / `:u${turn}`, so its answers are the offline pipeline's answers. `fault` scripts
 * failures per (key, attempt): 429, 500, timeouts (hang), truncated bodies, malformed JSON, connection resets,
 * and broken tool-call JSON (a content fault, returned on every attempt of that key).
 */

export type Fault = 'ok' | '429' | '500' | 'timeout' | 'truncated' | 'malformed' | 'reset' | 'bad_args';

export interface LoopbackOptions {
  tasks: Task[];
  latencyMs?: number;
  /** How long a 'timeout' request hangs before its socket is destroyed (make it longer than the client timeout). */
  hangMs?: number;
  fault?(key: string, attempt: number): Fault;
}

export interface Loopback {
  url: string;
  requests: number;
  /** Requests per idempotency key (retries included). */
  attempts: Map<string, number>;
  /** 200 responses per key: more than one means the client re-sent after a success. */
  served: Map<string, number>;
  faults: Record<string, number>;
  close(): Promise<void>;
}

const KEY = /^(.*):s(\d+):([au])(\d+)$/;

/** Turns OpenAI wire messages back into ours (enough for the scripted players, which read roles and content). */
const fromWire = (ms: any[]): Message[] => ms.map((m) => ({
  role: m.role, content: typeof m.content === 'string' ? m.content : '', tool_call_id: m.tool_call_id ?? null, name: null,
  tool_calls: (m.tool_calls ?? []).map((c: any) => ({ id: c.id, name: c.function.name, arguments: null, raw: c.function.arguments })),
}));

async function answer(tasks: Map<string, Task>, key: string, body: any, badArgs: boolean): Promise<object> {
  const m = KEY.exec(key);
  const task = m && tasks.get(m[1]);
  if (!m || !task) return { status: 400, error: { message: `unknown idempotency key ${JSON.stringify(key)}` } };
  const seed = Number(m[2]);
  let msg: Message;
  if (m[3] === 'a') msg = await scriptedTeacher(task, seed).respond({ messages: fromWire(body.messages), tools: [] });
  else {
    // the user view is flipped (our assistant speaks as "user"); flip back, dropping the user system prompt
    const flipped = fromWire(body.messages).slice(1).map((x) => ({ ...x, role: x.role === 'user' ? 'assistant' as const : 'user' as const }));
    msg = m[4] === '0' ? { role: 'user', content: task.instruction, tool_calls: [], tool_call_id: null, name: null } : await scriptedUser(task).respond({ messages: flipped, tools: [] });
  }
  const tool_calls = msg.tool_calls.length
    ? msg.tool_calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: badArgs ? c.raw.slice(0, -2) : c.raw } }))
    : undefined;
  return {
    id: `chatcmpl-${key}`, object: 'chat.completion', created: 0, model: body.model,
    choices: [{ index: 0, finish_reason: tool_calls ? 'tool_calls' : 'stop', message: { role: 'assistant', content: msg.content || null, tool_calls } }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startLoopback(o: LoopbackOptions): Promise<Loopback> {
  const tasks = new Map(o.tasks.map((t) => [t.id, t]));
  const lb: Loopback = { url: '', requests: 0, attempts: new Map(), served: new Map(), faults: {}, close: async () => {} };
  const json = (res: ServerResponse, status: number, v: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(v));
  };
  const server = createServer(async (req, res) => {
    const text = await readBody(req);
    lb.requests++;
    const key = String(req.headers['idempotency-key'] ?? '');
    const attempt = (lb.attempts.get(key) ?? 0) + 1;
    lb.attempts.set(key, attempt);
    const fault = o.fault?.(key, attempt) ?? 'ok';
    lb.faults[fault] = (lb.faults[fault] ?? 0) + 1;
    if (fault === 'timeout') return void setTimeout(() => res.destroy(), o.hangMs ?? 2000);
    if (o.latencyMs) await new Promise((r) => setTimeout(r, o.latencyMs));
    if (fault === 'reset') return void res.destroy();
    if (fault === '429') return json(res, 429, { error: { message: 'rate limited' } }, { 'retry-after': '0.01' });
    if (fault === '500') return json(res, 500, { error: { message: 'boom' } });
    if (fault === 'malformed') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end('{"id": "x", "choices": [{"message": ');
    }
    const reply = await answer(tasks, key, JSON.parse(text), fault === 'bad_args') as { status?: number };
    if (reply.status) return json(res, reply.status, reply);
    const payload = JSON.stringify(reply);
    if (fault === 'truncated') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) });
      res.write(payload.slice(0, payload.length >> 1));
      return void setTimeout(() => res.destroy(), 5);
    }
    lb.served.set(key, (lb.served.get(key) ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(payload);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  lb.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  lb.close = () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); });
  return lb;
}
