/*
 * `agentforge serve MODEL`: an OpenAI-compatible HTTP server over OrtEngine, so any agent framework can use a
 * trained model, and the local rollout worker of asynchronous RL (runtime/rl/rollout-client.ts speaks to it exactly
 * as to vLLM or SGLang).
 *
 *   POST /v1/chat/completions   messages + tools → assistant message; the model's tool calls (in its family's
 *                               format: runtime/agent/tool-formats.ts) come back as OpenAI tool_calls. `logprobs: true` adds choices[].logprobs.content.
 *   POST /v1/completions        prompt as text or token ids; `logprobs: n` adds token_logprobs; vLLM's
 *                               return_tokens_as_token_ids makes `tokens` "token_id:<id>" (token-in/token-out).
 *   GET  /v1/models
 *   POST /v1/reload             {dir, version?}: load an export as policy version v (ours)
 *   POST /update_weights_from_disk  {model_path}: SGLang's documented reload path, same effect
 *   POST /v1/load_lora_adapter  {lora_name, lora_path}: vLLM's, same effect; later requests may name lora_name
 *   GET  /health
 * Every generation answers with the policy version that produced it (`policy_version`, also a response header), so
 * a client can tell which weights made its tokens. Requests from concurrent clients are decoded together
 * (BatchingGenerator), and finished sequences stay in the engine's prefix cache (a multi-turn client's next turn
 * prefills only its new tokens). `stream: true` answers as server-sent events (one content chunk: the engine does not
 * expose tokens before the sequence ends).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Message, ToolCall } from '../../../schemas/message.ts';
import { ToolSpec } from '../../../schemas/tool.ts';
import { OrtEngine } from '../engines/ort.ts';
import { BatchingGenerator } from '../batcher.ts';
import { ChatTokens, decodeIds, encodeText, loadChatTokenizer, type ChatTokenizer } from '../tokenize.ts';
import { parseAssistant } from '../parse.ts';
import { parseTurn, type FormatHolder } from '../tool-formats.ts';
import { policyContext } from '../local.ts';
import type { GenerateRequest, GenerateResult } from '../engines/engine.ts';

/**
 * The least context a server gets by default (its default before it read the model's). A server only caps what its
 * clients ask for: their rollout limits decide how much of the context an episode uses, and a RoPE model trained on
 * fewer positions (the 1M-parameter default model: 2,048) still runs past them when a client's limits allow it.
 */
export const SERVE_MIN_CONTEXT = 4096;

export interface ServeOptions {
  /** ONNX export dir (model.onnx + meta.json + tokenizer files). */
  dir: string;
  host?: string;
  /** 0 = any free port. */
  port?: number;
  /** Name under /v1/models (default: "agentforge"). */
  model?: string;
  maxBatch?: number;
  /**
   * Prompt + generation tokens per sequence; absent: the model's own context (its config's max_position_embeddings),
   * at least SERVE_MIN_CONTEXT.
   */
  maxContext?: number;
  /** onnxruntime intra-op threads (0 = its default, every core); a server per core sets 1. */
  threads?: number;
  /** Prefix cache in tokens (0: none); absent: engines/ort.ts defaultPrefixCacheTokens. */
  prefixCacheTokens?: number;
  /** How the model writes tool calls (runtime/agent/tool-formats.ts); absent: the one its chat template renders. */
  toolCallFormat?: string;
  /** Where the model runs: 'cpu' (default) or 'cuda'. */
  device?: 'cpu' | 'cuda';
  chatTemplate?: string;
  /** Policy version of the starting weights (default: meta.json's). */
  version?: number;
  log?: (line: string) => void;
}

export interface RunningServer {
  url: string;
  port: number;
  readonly policyVersion: number;
  /** Sizes of the batches the engine decoded (requests from concurrent clients share a batch). */
  readonly batchSizes: readonly number[];
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

interface WireToolCall { id?: string; type?: string; function?: { name?: string; arguments?: unknown } }
interface WireMessage { role?: string; content?: unknown; tool_calls?: WireToolCall[]; tool_call_id?: string; name?: string }

const num = (v: unknown, dflt: number, where: string, min = -Infinity): number => {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new HttpError(400, `${where} must be a number >= ${min}`);
  return v;
};

function textOf(content: unknown, where: string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((p, i) => {
      if (p && typeof p === 'object' && (p as { type?: string }).type === 'text') return String((p as { text?: unknown }).text ?? '');
      throw new HttpError(400, `${where}[${i}]: only text content parts are supported`);
    }).join('');
  }
  throw new HttpError(400, `${where} must be a string or a list of text parts`);
}

function toMessage(m: WireMessage, i: number): Message {
  const where = `messages[${i}]`;
  const role = m.role === 'developer' ? 'system' : m.role;
  if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'tool') throw new HttpError(400, `${where}.role '${m.role}' is not one of system, user, assistant, tool`);
  const calls: ToolCall[] = (m.tool_calls ?? []).map((c, k) => {
    const raw = typeof c.function?.arguments === 'string' ? c.function.arguments : JSON.stringify(c.function?.arguments ?? {});
    let args: Record<string, unknown> | null = null;
    try { const v = JSON.parse(raw); if (v && typeof v === 'object' && !Array.isArray(v)) args = v; } catch { /* kept raw */ }
    if (!c.function?.name) throw new HttpError(400, `${where}.tool_calls[${k}].function.name is missing`);
    return { id: c.id ?? `call_${k}`, name: c.function.name, arguments: args, raw };
  });
  return { role, content: textOf(m.content, `${where}.content`), tool_calls: calls, tool_call_id: m.tool_call_id ?? null, name: m.name ?? null };
}

function toolsOf(tools: unknown): ToolSpec[] {
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools)) throw new HttpError(400, 'tools must be a list');
  return tools.map((t, i) => {
    const p = ToolSpec.safeParse(t);
    if (!p.success) throw new HttpError(400, `tools[${i}]: ${p.error.issues[0].path.join('.')}: ${p.error.issues[0].message}`);
    return p.data;
  });
}

/**
 * An assistant turn's text in the OpenAI shape: the model's tool calls, parsed in the tokenizer's format
 * (runtime/agent/tool-formats.ts; Hermes <tool_call> blocks without one), become tool_calls with their arguments as
 * a JSON string; a call whose arguments do not parse keeps what the model wrote.
 */
export function assistantReply(text: string, idPrefix: string, ct?: FormatHolder): { content: string | null; tool_calls: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }> } {
  const parsed = ct ? parseTurn(ct, text, idPrefix) : parseAssistant(text, idPrefix);
  const tool_calls = parsed.tool_calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments ? JSON.stringify(c.arguments) : c.raw } }));
  return { content: parsed.content || (tool_calls.length ? null : ''), tool_calls };
}

const finishOf = (g: GenerateResult, calls: number): string =>
  g.finish === 'stop' ? (calls ? 'tool_calls' : 'stop') : g.finish === 'error' ? 'error' : 'length';

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v;
  } catch (e) {
    throw new HttpError(400, `request body is not a JSON object: ${(e as Error).message}`);
  }
}

export async function serve(o: ServeOptions): Promise<RunningServer> {
  const maxBatch = o.maxBatch ?? 32;
  const maxContext = o.maxContext ?? Math.max(policyContext(o.dir), SERVE_MIN_CONTEXT);
  let ct: ChatTokenizer = loadChatTokenizer(o.dir, { chatTemplate: o.chatTemplate, toolCallFormat: o.toolCallFormat });
  const engine = await OrtEngine.load(o.dir, { maxBatch, maxContext, intraOpThreads: o.threads ?? 0, prefixCacheTokens: o.prefixCacheTokens, device: o.device });
  if (o.version !== undefined) await engine.reload(o.dir, o.version);
  const gen = new BatchingGenerator(engine, maxBatch);
  const names = new Set([o.model ?? 'agentforge']);
  /** LoRA-style names of the versions loaded through /v1/load_lora_adapter: a reply names the version that made it. */
  const loraNames = new Map<number, string>();
  const replyModel = (asked: string, version: number) => (loraNames.size && asked !== (o.model ?? 'agentforge') ? loraNames.get(version) ?? asked : asked);
  let created = 0;
  const log = o.log ?? (() => {});
  log(`serving ${o.dir}: context ${maxContext}, tool calls as ${ct.toolCallFormat}, prefix cache ${engine.settings.prefixCacheTokens} tokens`);
  let reloading: Promise<void> = Promise.resolve();

  const reload = async (dir: string, version: number | undefined): Promise<number> => {
    const run = async () => {
      let v = version;
      if (v === undefined) {
        try { v = Number(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')).policy_version); } catch (e) {
          throw new HttpError(400, `cannot read ${join(dir, 'meta.json')}: ${(e as Error).message} (is ${dir} an ONNX export?)`);
        }
        if (!Number.isInteger(v)) throw new HttpError(400, `${join(dir, 'meta.json')} has no integer policy_version; pass version`);
      }
      const t0 = performance.now();
      await engine.reload(dir, v);
      ct = loadChatTokenizer(dir, { chatTemplate: o.chatTemplate, toolCallFormat: o.toolCallFormat });
      log(`reloaded ${dir} as policy version ${v} in ${((performance.now() - t0) / 1000).toFixed(2)}s`);
      return v;
    };
    const p = reloading.then(run, run);
    reloading = p.then(() => {}, () => {});
    return p;
  };

  const checkModel = (b: Record<string, unknown>) => {
    if (b.model !== undefined && typeof b.model === 'string' && !names.has(b.model)) {
      throw new HttpError(404, `model '${b.model}' is not served here (served: ${[...names].join(', ')})`);
    }
    return (b.model as string | undefined) ?? [...names][0];
  };

  const sampling = (b: Record<string, unknown>, promptLen: number, stop: number[]): GenerateRequest => {
    const room = maxContext - promptLen;
    if (room < 1) throw new HttpError(400, `the prompt has ${promptLen} tokens; the context is ${maxContext}`);
    const maxTokens = Math.min(room, Math.floor(num(b.max_completion_tokens ?? b.max_tokens, Math.min(256, room), 'max_tokens', 1)));
    const extra = Array.isArray(b.stop_token_ids) ? (b.stop_token_ids as unknown[]).filter((x): x is number => Number.isInteger(x)) : [];
    return { prompt: [], maxTokens, stop: [...new Set([...stop, ...extra])], temperature: num(b.temperature, 1, 'temperature', 0),
      topP: num(b.top_p, 1, 'top_p', 0), seed: Math.floor(num(b.seed, 0, 'seed')) >>> 0 };
  };

  async function chat(b: Record<string, unknown>, res: ServerResponse): Promise<void> {
    const model = checkModel(b);
    if (!Array.isArray(b.messages) || !b.messages.length) throw new HttpError(400, 'messages must be a non-empty list');
    const messages = (b.messages as WireMessage[]).map(toMessage);
    const tools = toolsOf(b.tools);
    const chatTok = new ChatTokens(ct, tools);
    for (const m of messages) chatTok.appendMessage(m);
    const prompt = chatTok.generationPrompt();
    const req = { ...sampling(b, prompt.length, [ct.endOfTurnId]), prompt };
    const g = await gen.generate(req);
    const text = decodeIds(ct, g.tokens);
    const { content, tool_calls } = assistantReply(text, `call_${(created + 1).toString(36)}_`, ct);
    const logprobs = b.logprobs ? { content: g.tokens.map((t, i) => {
      const tok = decodeIds(ct, [t]);
      return { token: tok, logprob: g.logprobs[i], bytes: [...Buffer.from(tok, 'utf8')], top_logprobs: [] };
    }) } : null;
    const message = { role: 'assistant', content, ...(tool_calls.length ? { tool_calls } : {}) };
    const usage = { prompt_tokens: prompt.length, completion_tokens: g.tokens.length, total_tokens: prompt.length + g.tokens.length };
    const id = `chatcmpl-${(++created).toString(36)}`;
    const head = { id, created: Math.floor(Date.now() / 1000), model: replyModel(model, g.policyVersion), system_fingerprint: `policy-${g.policyVersion}`, policy_version: g.policyVersion };
    const choice = { index: 0, message, logprobs, finish_reason: finishOf(g, tool_calls.length), token_ids: g.tokens };
    if (b.stream) {
      const delta = { role: 'assistant', content: message.content ?? '', ...(tool_calls.length ? { tool_calls: tool_calls.map((c, index) => ({ index, ...c })) } : {}) };
      sse(res, g.policyVersion, [
        { ...head, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs, finish_reason: null }] },
        { ...head, object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: choice.finish_reason }], usage },
      ]);
      return;
    }
    json(res, 200, { ...head, object: 'chat.completion', choices: [choice], usage, prompt_token_ids: prompt }, g.policyVersion);
  }

  async function completions(b: Record<string, unknown>, res: ServerResponse): Promise<void> {
    const model = checkModel(b);
    const p = b.prompt;
    const prompts: number[][] = Array.isArray(p) && p.length && Array.isArray(p[0]) ? (p as number[][])
      : Array.isArray(p) && p.every((x) => typeof x === 'number') ? [p as number[]]
        : typeof p === 'string' ? [encodeText(ct, p)]
          : Array.isArray(p) && p.every((x) => typeof x === 'string') ? (p as string[]).map((s) => encodeText(ct, s))
            : (() => { throw new HttpError(400, 'prompt must be a string, a list of strings, a list of token ids or a list of such lists'); })();
    const vocab = engine.meta.vocab_size;
    prompts.forEach((q, i) => {
      if (!q.length) throw new HttpError(400, `prompt ${i} is empty`);
      const bad = q.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
      if (bad >= 0) throw new HttpError(400, `prompt ${i}: token ${bad} = ${q[bad]} is not an id in [0, ${vocab})`);
    });
    const n = Math.floor(num(b.n, 1, 'n', 1));
    const asIds = b.return_tokens_as_token_ids === true;
    const want = b.logprobs !== undefined && b.logprobs !== null && b.logprobs !== false;
    const jobs = prompts.flatMap((q) => Array.from({ length: n }, (_, k) => {
      const base = sampling(b, q.length, []);
      return gen.generate({ ...base, prompt: q, seed: (base.seed + k) >>> 0 });
    }));
    const outs = await Promise.all(jobs);
    const version = Math.min(...outs.map((g) => g.policyVersion));
    const choices = outs.map((g, index) => ({
      index, text: decodeIds(ct, g.tokens), finish_reason: g.finish === 'stop' ? 'stop' : 'length',
      stop_reason: g.finish === 'stop' ? g.tokens[g.tokens.length - 1] : null, token_ids: g.tokens,
      logprobs: want ? { tokens: g.tokens.map((t) => (asIds ? `token_id:${t}` : decodeIds(ct, [t]))), token_logprobs: g.logprobs,
        top_logprobs: null, text_offset: [] } : null,
    }));
    const promptTokens = prompts.reduce((s, q) => s + q.length, 0);
    const completion = outs.reduce((s, g) => s + g.tokens.length, 0);
    const out = { id: `cmpl-${(++created).toString(36)}`, object: 'text_completion', created: Math.floor(Date.now() / 1000), model: replyModel(model, version),
      system_fingerprint: `policy-${version}`, policy_version: version, choices,
      usage: { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion } };
    if (b.stream) {
      sse(res, version, [{ ...out, choices: choices.map((c) => ({ ...c, finish_reason: null })) }, { ...out, choices: choices.map((c) => ({ ...c, text: '', logprobs: null })) }]);
      return;
    }
    json(res, 200, out, version);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && (path === '/health' || path === '/v1/health')) return json(res, 200, { ok: true, policy_version: engine.policyVersion }, engine.policyVersion);
    if (req.method === 'GET' && path === '/v1/models') {
      return json(res, 200, { object: 'list', data: [...names].map((id) => ({ id, object: 'model', created: 0, owned_by: 'agentforge', policy_version: engine.policyVersion })) }, engine.policyVersion);
    }
    if (req.method !== 'POST') throw new HttpError(404, `no route ${req.method} ${path}`);
    const b = await body(req);
    switch (path) {
      case '/v1/chat/completions': return chat(b, res);
      case '/v1/completions': return completions(b, res);
      case '/v1/reload': {
        if (typeof b.dir !== 'string') throw new HttpError(400, '/v1/reload: dir (an ONNX export directory) is required');
        const v = await reload(b.dir, b.version === undefined ? undefined : Math.floor(num(b.version, 0, 'version', 0)));
        return json(res, 200, { ok: true, policy_version: v }, v);
      }
      case '/update_weights_from_disk': {
        if (typeof b.model_path !== 'string') throw new HttpError(400, '/update_weights_from_disk: model_path is required');
        const v = await reload(b.model_path, b.version === undefined ? undefined : Math.floor(num(b.version, 0, 'version', 0)));
        return json(res, 200, { success: true, message: `loaded policy version ${v}`, policy_version: v }, v);
      }
      case '/v1/load_lora_adapter': {
        if (typeof b.lora_name !== 'string' || typeof b.lora_path !== 'string') throw new HttpError(400, '/v1/load_lora_adapter: lora_name and lora_path are required');
        // one set of weights at a time: the newest adapter replaces the served weights; a request naming an older
        // adapter runs on the newest, and its reply names the version that ran it
        const m = /(\d+)$/.exec(b.lora_name);
        const v = await reload(b.lora_path, m ? Number(m[1]) : undefined);
        names.add(b.lora_name);
        loraNames.set(v, b.lora_name);
        res.writeHead(200, { 'content-type': 'text/plain', 'x-policy-version': String(v) });
        res.end(`Success: LoRA adapter '${b.lora_name}' added successfully.`);
        return;
      }
      default: throw new HttpError(404, `no route POST ${path}`);
    }
  }

  const server: Server = createServer((req, res) => {
    route(req, res).catch((e) => {
      const status = e instanceof HttpError ? e.status : 500;
      if (status === 500) log(`error on ${req.url}: ${(e as Error).stack ?? e}`);
      if (!res.headersSent) json(res, status, { error: { message: (e as Error).message, type: status === 500 ? 'internal_error' : 'invalid_request_error', code: status } });
      else res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${o.host ?? '127.0.0.1'}:${port}`;
  log(`serving ${o.dir} (policy version ${engine.policyVersion}) at ${url}/v1`);
  return {
    url, port,
    get policyVersion() { return engine.policyVersion; },
    get batchSizes() { return gen.batchSizes; },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await engine.close();
    },
  };
}

function json(res: ServerResponse, status: number, value: unknown, version?: number): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(version !== undefined ? { 'x-policy-version': String(version) } : {}) });
  res.end(text);
}

function sse(res: ServerResponse, version: number, events: unknown[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-policy-version': String(version) });
  for (const e of events) res.write(`data: ${JSON.stringify(e)}\n\n`);
  res.end('data: [DONE]\n\n');
}
