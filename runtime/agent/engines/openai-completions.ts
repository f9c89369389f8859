/*
 * Engine over an OpenAI-compatible /v1/completions server (vLLM, SGLang) for rollouts at scale.
 * Sends the prompt as token ids, asks for logprobs (`logprobs: 1`; servers report the sampled token's own logprob
 * in token_logprobs) and, vLLM-style, for tokens as ids (`return_tokens_as_token_ids`, tokens come
 * back as "token_id:123"). A server that cannot return ids is still usable: its text is re-tokenized with the
 * model's tokenizer and the result carries `retokenized: true` (ids may then differ from what was sampled, and
 * logprobs are NaN unless their count matches) — fine for evaluation, not for on-policy RL.
 * Logprob convention: what the server reports (vLLM: of the sampled token; see engine.ts for ours).
 */
import { encodeText, type ChatTokenizer } from '../tokenize.ts';
import { validateRequest, type EngineFinish, type GenerateRequest, type GenerateResult, type InferenceEngine } from './engine.ts';

export interface OpenAICompletionsOptions {
  baseURL: string;
  model: string;
  apiKey?: string;
  /** Needed only for servers that cannot return token ids. */
  tokenizer?: ChatTokenizer;
  maxConcurrency?: number;
  retries?: number;
  timeoutMs?: number;
  policyVersion?: number;
  /** Called by reload(dir, version): e.g. POST the new weights to the server; default only records the version. */
  onReload?: (dir: string, version: number) => Promise<void>;
}

interface CompletionChoice {
  text?: string;
  finish_reason?: string | null;
  stop_reason?: number | string | null;
  logprobs?: { tokens?: string[]; token_logprobs?: (number | null)[] } | null;
}

const TOKEN_ID = /^token_id:(\d+)$/;

export class OpenAICompletionsEngine implements InferenceEngine {
  readonly name = 'openai-completions';
  private version: number;
  constructor(private readonly opts: OpenAICompletionsOptions) {
    this.version = opts.policyVersion ?? 0;
  }

  get policyVersion(): number { return this.version; }

  async reload(dir: string, version?: number): Promise<void> {
    const v = version ?? this.version + 1;
    await this.opts.onReload?.(dir, v);
    this.version = v;
  }

  async close(): Promise<void> {}

  async generate(reqs: GenerateRequest[], opts: { signal?: AbortSignal } = {}): Promise<GenerateResult[]> {
    reqs.forEach((r, i) => validateRequest(r, i));
    const results: GenerateResult[] = new Array(reqs.length);
    let next = 0;
    const worker = async () => {
      while (next < reqs.length) {
        const i = next++;
        results[i] = await this.one(reqs[i], i, opts.signal);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.maxConcurrency ?? 16, reqs.length) }, worker));
    return results;
  }

  private async one(req: GenerateRequest, index: number, signal?: AbortSignal): Promise<GenerateResult> {
    const version = this.version;
    const body = {
      model: this.opts.model, prompt: req.prompt, max_tokens: req.maxTokens, temperature: req.temperature, top_p: req.topP,
      seed: req.seed, n: 1, logprobs: 1, echo: false,
      // vLLM / SGLang extensions; other servers ignore them
      stop_token_ids: req.stop, return_tokens_as_token_ids: true, skip_special_tokens: false, include_stop_str_in_output: true,
    };
    const json = await this.post('/completions', body, `request ${index}`, signal);
    const choice = (json as { choices?: CompletionChoice[] }).choices?.[0];
    if (!choice) throw new Error(`openai-completions request ${index}: response has no choices: ${JSON.stringify(json).slice(0, 300)}`);
    return { ...this.decodeChoice(choice, req, index), policyVersion: version };
  }

  private decodeChoice(choice: CompletionChoice, req: GenerateRequest, index: number): Omit<GenerateResult, 'policyVersion'> {
    const finish: EngineFinish = choice.finish_reason === 'length' ? 'length' : choice.finish_reason === 'stop' ? 'stop' : 'error';
    const lp = choice.logprobs;
    const ids = lp?.tokens?.map((t) => TOKEN_ID.exec(t)?.[1]);
    if (ids && ids.length > 0 && ids.every((x) => x !== undefined)) {
      const tokens = ids.map(Number);
      const logprobs = (lp?.token_logprobs ?? []).map((x) => (x === null ? Number.NaN : x));
      // vLLM may leave the stop id out of the tokens while naming it in stop_reason: put it back (logprob unknown)
      if (finish === 'stop' && typeof choice.stop_reason === 'number' && !req.stop.includes(tokens[tokens.length - 1])) {
        tokens.push(choice.stop_reason);
        logprobs.push(Number.NaN);
      }
      return { tokens, logprobs, finish };
    }
    const tk = this.opts.tokenizer;
    if (!tk) {
      throw new Error(`openai-completions request ${index}: the server returned no token ids (does it support ` +
        'return_tokens_as_token_ids?) and no tokenizer was given to re-tokenize its text');
    }
    const tokens = encodeText(tk, choice.text ?? '');
    const given = lp?.token_logprobs ?? [];
    const logprobs = given.length === tokens.length ? given.map((x) => (x === null ? Number.NaN : x)) : tokens.map(() => Number.NaN);
    return { tokens, logprobs, finish, retokenized: true };
  }

  private async post(path: string, body: unknown, where: string, signal?: AbortSignal): Promise<unknown> {
    const url = this.opts.baseURL.replace(/\/$/, '') + path;
    const retries = this.opts.retries ?? 3;
    for (let attempt = 0; ; attempt++) {
      let status = 0;
      let text = '';
      try {
        const res = await fetch(url, {
          method: 'POST', body: JSON.stringify(body),
          headers: { 'content-type': 'application/json', ...(this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {}) },
          signal: anySignal(signal, AbortSignal.timeout(this.opts.timeoutMs ?? 600_000)),
        });
        status = res.status;
        text = await res.text();
        if (res.ok) return JSON.parse(text);
      } catch (e) {
        if (signal?.aborted) throw e;
        text = (e as Error).message;
      }
      const retriable = status === 0 || status === 429 || status >= 500;
      if (!retriable || attempt >= retries) {
        throw new Error(`openai-completions ${where}: POST ${url} failed (${status || 'network'}): ${text.slice(0, 500)}`);
      }
      await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
    }
  }
}

function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}
