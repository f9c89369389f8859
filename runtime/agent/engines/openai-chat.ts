import OpenAI, { APIError, APIUserAbortError } from 'openai';
import type { Message, ToolCall } from '../../../schemas/message.ts';
import type { ToolSpec } from '../../../schemas/tool.ts';
import type { ChatPolicy, ChatRequest } from '../policy.ts';

/*
 * A ChatPolicy over any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, llama.cpp), through the
 * official `openai` SDK with its own retries switched off: this module retries 408/409/429/5xx, connection
 * failures, timeouts and malformed or truncated bodies with capped exponential backoff (honouring Retry-After),
 * and sends the request's idempotency key as a header so a server or proxy that dedups sees one logical request.
 * 4xx errors other than those are the caller's bug and fail at once. Tool calls come back in our Message shape;
 * arguments that are not a JSON object keep their raw text and `arguments: null` (the episode records that as a
 * turn error rather than failing the request).
 */

export interface OpenAIChatOptions {
  baseURL: string;
  model: string;
  apiKey?: string;
  name?: string;
  temperature?: number;
  maxTokens?: number;
  /** Per attempt (default 60 s). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 6). */
  maxRetries?: number;
  /** First backoff (default 500 ms), doubled per retry, capped at maxBackoffMs (default 20 s), with jitter. */
  backoffMs?: number;
  maxBackoffMs?: number;
  idempotencyHeader?: string;
  /** Extra body fields for servers that take them (e.g. vLLM's `top_k`). */
  extraBody?: Record<string, unknown>;
}

export interface ChatStats { requests: number; retries: number; failures: number; byCause: Record<string, number> }

export interface OpenAIChatPolicy extends ChatPolicy {
  readonly stats: ChatStats;
}

/** Options from AGENTFORGE_OPENAI_BASE_URL / _MODEL / _API_KEY (falling back to OPENAI_BASE_URL, OPENAI_API_KEY). */
export function openAIOptionsFromEnv(env: Record<string, string | undefined> = process.env): OpenAIChatOptions {
  const baseURL = env.AGENTFORGE_OPENAI_BASE_URL ?? env.OPENAI_BASE_URL;
  const model = env.AGENTFORGE_OPENAI_MODEL ?? env.OPENAI_MODEL;
  if (!baseURL || !model) {
    throw new Error('OpenAI-compatible teacher: set AGENTFORGE_OPENAI_BASE_URL (e.g. http://127.0.0.1:8000/v1) and AGENTFORGE_OPENAI_MODEL');
  }
  return { baseURL, model, apiKey: env.AGENTFORGE_OPENAI_API_KEY ?? env.OPENAI_API_KEY };
}

type WireMessage = OpenAI.Chat.Completions.ChatCompletionMessageParam;

export function toWire(m: Message): WireMessage {
  switch (m.role) {
    case 'system': return { role: 'system', content: m.content };
    case 'user': return { role: 'user', content: m.content };
    case 'tool': return { role: 'tool', content: m.content, tool_call_id: m.tool_call_id ?? '' };
    case 'assistant': {
      if (!m.tool_calls.length) return { role: 'assistant', content: m.content };
      return {
        role: 'assistant', content: m.content || null,
        tool_calls: m.tool_calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.raw || JSON.stringify(c.arguments ?? {}) } })),
      };
    }
  }
}

/** Parses a tool call's argument text; anything but a JSON object is kept raw with arguments null. */
export function parseArguments(raw: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(raw === '' ? '{}' : raw);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

class MalformedResponse extends Error {}

export function fromWire(choice: unknown): Message {
  const m = (choice as { message?: Record<string, unknown> } | undefined)?.message;
  if (!m || typeof m !== 'object') throw new MalformedResponse('response has no choices[0].message');
  const calls = Array.isArray(m.tool_calls) ? m.tool_calls : [];
  const tool_calls: ToolCall[] = calls.map((c: any, i: number) => {
    const raw = typeof c?.function?.arguments === 'string' ? c.function.arguments : JSON.stringify(c?.function?.arguments ?? '');
    return { id: typeof c?.id === 'string' && c.id ? c.id : `call_${i}`, name: String(c?.function?.name ?? ''), arguments: parseArguments(raw), raw };
  });
  return { role: 'assistant', content: typeof m.content === 'string' ? m.content : '', tool_calls, tool_call_id: null, name: null };
}

function retryCause(e: unknown): string | null {
  if (e instanceof APIUserAbortError) return null;
  if (e instanceof APIError && typeof e.status === 'number') {
    return e.status === 408 || e.status === 409 || e.status === 429 || e.status >= 500 ? `http_${e.status}` : null;
  }
  if (e instanceof APIError) return e.constructor.name === 'APIConnectionTimeoutError' ? 'timeout' : 'connection';
  if (e instanceof MalformedResponse || e instanceof SyntaxError) return 'malformed';
  return 'transport'; // e.g. a body cut off mid-stream ("terminated")
}

function retryAfterMs(e: unknown): number | null {
  const h = e instanceof APIError ? e.headers?.get?.('retry-after') : null;
  const s = h ? Number(h) : NaN;
  return Number.isFinite(s) && s >= 0 ? s * 1000 : null;
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve, reject) => {
  if (signal?.aborted) return reject(signal.reason);
  const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
  const onAbort = () => { clearTimeout(t); reject(signal!.reason); };
  signal?.addEventListener('abort', onAbort, { once: true });
});

/**
 * A signal for one attempt, aborted with `parent`. The HTTP client leaves its abort listener on whatever signal it
 * is given; on the node's long-lived signal those piled up with every retry (MaxListenersExceededWarning), on a
 * per-attempt signal they go away with it. `release` removes the one listener this adds to `parent`.
 */
function childSignal(parent?: AbortSignal): { signal?: AbortSignal; release(): void } {
  if (!parent) return { signal: undefined, release: () => undefined };
  const ac = new AbortController();
  if (parent.aborted) ac.abort(parent.reason);
  const onAbort = () => ac.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  return { signal: ac.signal, release: () => parent.removeEventListener('abort', onAbort) };
}

export function openAIChatPolicy(opts: OpenAIChatOptions): OpenAIChatPolicy {
  const o = { timeoutMs: 60_000, maxRetries: 6, backoffMs: 500, maxBackoffMs: 20_000, idempotencyHeader: 'Idempotency-Key', ...opts };
  const client = new OpenAI({ baseURL: o.baseURL, apiKey: o.apiKey || 'none', maxRetries: 0, timeout: o.timeoutMs });
  const stats: ChatStats = { requests: 0, retries: 0, failures: 0, byCause: {} };
  const tools = (specs: ToolSpec[]) => (specs.length ? specs.map((t) => ({ type: 'function' as const, function: t.function })) : undefined);

  async function once(req: ChatRequest): Promise<Message> {
    stats.requests++;
    const body = {
      model: o.model, messages: req.messages.map(toWire), tools: tools(req.tools), seed: req.seed,
      temperature: o.temperature, max_tokens: o.maxTokens, ...o.extraBody,
    } as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming;
    const headers = req.idempotencyKey ? { [o.idempotencyHeader]: req.idempotencyKey } : undefined;
    const { signal, release } = childSignal(req.signal);
    try {
      const res = await client.chat.completions.create(body, { headers, signal, timeout: o.timeoutMs, maxRetries: 0 });
      return fromWire((res as { choices?: unknown[] })?.choices?.[0]);
    } finally {
      release();
    }
  }

  return {
    name: opts.name ?? `openai:${o.model}`,
    stats,
    async respond(req: ChatRequest): Promise<Message> {
      for (let attempt = 0; ; attempt++) {
        try {
          return await once(req);
        } catch (e) {
          const cause = req.signal?.aborted ? null : retryCause(e);
          if (cause === null || attempt >= o.maxRetries) {
            stats.failures++;
            throw e;
          }
          stats.retries++;
          stats.byCause[cause] = (stats.byCause[cause] ?? 0) + 1;
          const backoff = Math.min(o.maxBackoffMs, o.backoffMs * 2 ** attempt) * (0.5 + Math.random() / 2);
          await sleep(Math.min(o.maxBackoffMs, retryAfterMs(e) ?? backoff), req.signal);
        }
      }
    },
  };
}
