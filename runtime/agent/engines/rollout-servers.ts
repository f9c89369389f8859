/*
 * One client for a fleet of rollout servers that speak OpenAI-compatible /v1/completions, token-in/token-out:
 * `agentforge serve` (runtime/agent/serve), vLLM or SGLang. It is an InferenceEngine, so the episode loop and the RL
 * orchestrator use it exactly like the in-process OrtEngine.
 *
 * Weight hand-off, per server, by its documented reload path (`reload` option):
 *   'agentforge'  POST /v1/reload {dir, version}                      (agentforge serve)
 *   'sglang'      POST /update_weights_from_disk {model_path}         (SGLang; agentforge serve answers it too)
 *   'lora'        POST /v1/load_lora_adapter {lora_name, lora_path}   (vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True,
 *                 SGLang too); requests then name the adapter `<model>-v<version>`, so a reply names its version.
 *                 With `weights: 'hf'` and a LoRA trainer, lora_path is the adapter the trainer saved in peft's format
 *                 (<save_dir>/adapter): the server serves the model RL started from (the SFT output) as its base
 * Each reload's seconds are kept per version (`handoffs`).
 *
 * Routing: requests with the same `affinity` (an episode's id) stick to one server (its prefix cache keeps the
 * conversation), new ones go to the least-loaded live server. A reply is accepted only if it is well formed (token
 * ids in the vocab, one finite logprob <= 0 per token, a known finish reason) and was produced by the policy version
 * the server was last told to load (our server says `policy_version`; in 'lora' mode the reply's model names it).
 * Otherwise, or when the server is unreachable or hangs past `timeoutMs`, the server is set aside for `cooldownMs`
 * and the request goes to another one (an episode in flight moves with it; its turns keep their versions). A
 * request no server answers becomes finish 'error' with the reason, so the episode is untrainable (never trained).
 * Every such event is counted by reason in `drops` (the orchestrator writes them to metrics).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { validateRequest, type EngineFinish, type GenerateRequest, type GenerateResult, type InferenceEngine } from './engine.ts';

export type ReloadMode = 'agentforge' | 'sglang' | 'lora';

export interface RolloutServerSpec {
  /** Base URL including /v1, e.g. http://127.0.0.1:8000/v1. */
  url: string;
  reload?: ReloadMode;
  /**
   * What the server loads: 'onnx' (agentforge serve: the ONNX export) or 'hf' (SGLang, vLLM: the HF directory the
   * trainer saves each step, `hfDir`).
   */
  weights?: 'onnx' | 'hf';
}

export interface RolloutServersOptions {
  servers: RolloutServerSpec[];
  /** Model name sent with each request (the base name in 'lora' mode). */
  model?: string;
  /** Version of the weights the servers start with. */
  policyVersion?: number;
  vocabSize?: number;
  /** Per request (a hung server is set aside after this). */
  timeoutMs?: number;
  cooldownMs?: number;
  /** Different servers tried per request before it fails. */
  maxAttempts?: number;
  maxConcurrencyPerServer?: number;
  /** The HF directory (config + safetensors) of the newest policy, for servers with weights 'hf'. */
  hfDir?: string;
}

export type DropReason = 'unreachable' | 'timeout' | 'http_error' | 'garbage' | 'wrong_version' | 'reload_failed';

interface Server {
  spec: RolloutServerSpec;
  index: number;
  /** The version this server was last told to load (and acknowledged). */
  version: number;
  inflight: number;
  downUntil: number;
  /** Set while a reload to a newer version is in flight: replies may come from either. */
  loading: number | null;
}

class Rejected extends Error {
  constructor(readonly reason: DropReason, message: string) { super(message); }
}

export class RolloutServers implements InferenceEngine {
  readonly name = 'rollout-servers';
  private readonly servers: Server[];
  private version: number;
  private dir: string | null = null;
  private readonly sticky = new Map<string, number>();
  /** Reason → count of rejected replies and failed requests. */
  readonly drops: Record<string, number> = {};
  /** Requests that failed on every server they were tried on (their episodes are not trained). */
  failed = 0;
  /** Seconds each reload took, per version (slowest server). */
  readonly handoffs: Array<{ version: number; seconds: number }> = [];
  /** Requests answered, per server. */
  readonly served: number[];

  constructor(private readonly o: RolloutServersOptions) {
    if (!o.servers.length) throw new Error('RolloutServers: no servers given');
    const hf = o.servers.findIndex((s) => s.weights === 'hf');
    if (hf >= 0 && !o.hfDir) throw new Error(`RolloutServers: server ${hf} (${o.servers[hf].url}) loads HF weights but no hfDir was given (the trainer's save_dir)`);
    this.version = o.policyVersion ?? 0;
    this.servers = o.servers.map((spec, index) => ({ spec, index, version: this.version, inflight: 0, downUntil: 0, loading: null }));
    this.served = this.servers.map(() => 0);
  }

  get policyVersion(): number { return this.version; }

  /** Versions each server holds now (tests, metrics). */
  get serverVersions(): number[] { return this.servers.map((s) => s.version); }

  /** Requests in flight per server (queue depth metric). */
  get inflight(): number[] { return this.servers.map((s) => s.inflight); }

  async close(): Promise<void> {}

  /** Every live server loads `dir` as `version`; a server that fails is set aside until it reloads. */
  async reload(dir: string, version?: number): Promise<void> {
    const v = version ?? this.version + 1;
    this.dir = dir;
    const t0 = performance.now();
    const results = await Promise.allSettled(this.servers.map((s) => this.reloadOne(s, dir, v)));
    this.handoffs.push({ version: v, seconds: (performance.now() - t0) / 1000 });
    this.version = v;
    if (results.every((r) => r.status === 'rejected')) {
      throw new Error(`RolloutServers: no server loaded version ${v} from ${dir}: ${(results[0] as PromiseRejectedResult).reason?.message}`);
    }
  }

  private async reloadOne(s: Server, onnxDir: string, v: number): Promise<void> {
    s.loading = v;
    const dir = s.spec.weights === 'hf' ? this.o.hfDir! : onnxDir;
    try {
      const mode = s.spec.reload ?? 'agentforge';
      // a LoRA trainer's HF save holds the merged weights and, under adapter/, the adapter a LoRA server loads
      const adapter = join(dir, 'adapter');
      const loraPath = s.spec.weights === 'hf' && existsSync(join(adapter, 'adapter_config.json')) ? adapter : dir;
      const [path, body] = mode === 'sglang' ? ['/update_weights_from_disk', { model_path: dir, version: v }]
        : mode === 'lora' ? ['/load_lora_adapter', { lora_name: this.loraName(v), lora_path: loraPath }]
          : ['/reload', { dir, version: v }];
      // SGLang's path is at the server root, the others under /v1
      const base = mode === 'sglang' ? s.spec.url.replace(/\/v1\/?$/, '') : s.spec.url.replace(/\/$/, '');
      const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 120_000) });
      const text = await res.text();
      if (!res.ok) throw new Error(`${base}${path} answered ${res.status}: ${text.slice(0, 300)}`);
      if (mode === 'sglang' && /"success"\s*:\s*false/.test(text)) throw new Error(`${base}${path}: ${text.slice(0, 300)}`);
      s.version = v;
      s.downUntil = 0;
    } catch (e) {
      this.drop('reload_failed');
      s.downUntil = Date.now() + (this.o.cooldownMs ?? 2000);
      throw e;
    } finally {
      s.loading = null;
    }
  }

  private loraName(v: number): string { return `${this.o.model ?? 'agentforge'}-v${v}`; }

  private drop(reason: DropReason): void { this.drops[reason] = (this.drops[reason] ?? 0) + 1; }

  async generate(reqs: GenerateRequest[], opts: { signal?: AbortSignal } = {}): Promise<GenerateResult[]> {
    reqs.forEach((r, i) => validateRequest(r, i, this.o.vocabSize));
    return Promise.all(reqs.map((r) => this.one(r, opts.signal)));
  }

  private pick(tried: Set<number>, affinity?: string): Server | null {
    const now = Date.now();
    const live = this.servers.filter((s) => !tried.has(s.index) && s.downUntil <= now);
    if (!live.length) return null;
    const stuck = affinity === undefined ? undefined : this.sticky.get(affinity);
    const cap = this.o.maxConcurrencyPerServer ?? Infinity;
    const s = live.find((x) => x.index === stuck && x.inflight < cap) ?? live.reduce((a, b) => (b.inflight < a.inflight ? b : a));
    if (affinity !== undefined) this.sticky.set(affinity, s.index);
    return s;
  }

  private async one(req: GenerateRequest, signal?: AbortSignal): Promise<GenerateResult> {
    const tried = new Set<number>();
    const why: string[] = [];
    const attempts = this.o.maxAttempts ?? Math.max(2, this.servers.length);
    for (let k = 0; k < attempts; k++) {
      let s = this.pick(tried, req.affinity);
      if (!s && tried.size < this.servers.length) {
        // every untried server is cooling down: wait for the first to come back
        const next = Math.min(...this.servers.filter((x) => !tried.has(x.index)).map((x) => x.downUntil));
        await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
        s = this.pick(tried, req.affinity);
      }
      if (!s) break;
      tried.add(s.index);
      if (this.dir !== null && s.version !== this.version && s.loading === null) {
        // a server that missed a reload (it was down) catches up before it serves
        try { await this.reloadOne(s, this.dir, this.version); } catch (e) { why.push(`server ${s.index}: reload: ${(e as Error).message}`); continue; }
      }
      s.inflight++;
      try {
        const out = await this.ask(s, req, signal);
        this.served[s.index]++;
        return out;
      } catch (e) {
        if (signal?.aborted) throw e;
        const reason: DropReason = e instanceof Rejected ? e.reason : 'unreachable';
        this.drop(reason);
        s.downUntil = Date.now() + (this.o.cooldownMs ?? 2000);
        if (req.affinity !== undefined) this.sticky.delete(req.affinity);
        why.push(`server ${s.index} (${s.spec.url}): ${reason}: ${(e as Error).message.slice(0, 200)}`);
      } finally {
        s.inflight--;
      }
    }
    this.failed++;
    return { tokens: [], logprobs: [], finish: 'error', policyVersion: this.version, error: `no rollout server answered: ${why.join('; ') || 'none available'}` };
  }

  private async ask(s: Server, req: GenerateRequest, signal?: AbortSignal): Promise<GenerateResult> {
    const lora = s.spec.reload === 'lora';
    const expect = s.version;
    const body = {
      model: lora && expect !== (this.o.policyVersion ?? 0) ? this.loraName(expect) : (this.o.model ?? 'agentforge'),
      prompt: req.prompt, max_tokens: req.maxTokens, temperature: req.temperature, top_p: req.topP, seed: req.seed, n: 1, logprobs: 1,
      stop_token_ids: req.stop, return_tokens_as_token_ids: true, skip_special_tokens: false, include_stop_str_in_output: true,
    };
    const timeout = AbortSignal.timeout(this.o.timeoutMs ?? 120_000);
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${s.spec.url.replace(/\/$/, '')}/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body), signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      text = await res.text();
    } catch (e) {
      if (timeout.aborted && !signal?.aborted) throw new Rejected('timeout', `no answer within ${this.o.timeoutMs ?? 120_000} ms`);
      throw e;
    }
    if (!res.ok) throw new Rejected('http_error', `HTTP ${res.status}: ${text.slice(0, 200)}`);
    let json: any;
    try { json = JSON.parse(text); } catch { throw new Rejected('garbage', `reply is not JSON: ${text.slice(0, 80)}`); }
    const version = this.versionOf(json, s, lora, expect);
    if (version === null) throw new Rejected('wrong_version', `reply from policy version ${json?.policy_version ?? json?.model}, the server was told to load ${expect}`);
    return { ...decode(json, req, this.o.vocabSize), policyVersion: version };
  }

  /** The reply's policy version, or null when it is not one the server may be serving. */
  private versionOf(json: any, s: Server, lora: boolean, sent: number): number | null {
    // a request sent before a reload may finish on either side of it
    const ok = (v: number) => v === sent || v === s.version || v === s.loading;
    if (typeof json?.policy_version === 'number') return ok(json.policy_version) ? json.policy_version : null;
    if (lora && typeof json?.model === 'string') {
      const m = /-v(\d+)$/.exec(json.model);
      const v = m ? Number(m[1]) : (this.o.policyVersion ?? 0);
      return ok(v) ? v : null;
    }
    return s.version; // vLLM/SGLang without LoRA say nothing: trust the acknowledged reload
  }
}

const TOKEN_ID = /^token_id:(\d+)$/;

function decode(json: any, req: GenerateRequest, vocab?: number): Omit<GenerateResult, 'policyVersion'> {
  const c = json?.choices?.[0];
  if (!c || typeof c !== 'object') throw new Rejected('garbage', 'reply has no choices[0]');
  const finish: EngineFinish | null = c.finish_reason === 'stop' ? 'stop' : c.finish_reason === 'length' ? 'length' : null;
  if (!finish) throw new Rejected('garbage', `finish_reason ${JSON.stringify(c.finish_reason)}`);
  const raw: unknown[] = Array.isArray(c.token_ids) ? c.token_ids : (c.logprobs?.tokens ?? []).map((t: string) => (TOKEN_ID.exec(t)?.[1] ?? NaN));
  const tokens = raw.map(Number);
  const logprobs = (c.logprobs?.token_logprobs ?? []) as unknown[];
  if (!tokens.length || tokens.some((t) => !Number.isInteger(t) || t < 0 || (vocab !== undefined && t >= vocab))) {
    throw new Rejected('garbage', `token ids missing or outside the vocab: ${JSON.stringify(raw.slice(0, 8))}`);
  }
  // vLLM leaves the stop id out when it names it in stop_reason: put it back, its logprob unknown (NaN) → rejected below
  if (finish === 'stop' && !req.stop.includes(tokens[tokens.length - 1]) && typeof c.stop_reason === 'number') tokens.push(c.stop_reason);
  if (logprobs.length !== tokens.length || logprobs.some((x) => typeof x !== 'number' || !Number.isFinite(x) || x > 1e-6)) {
    throw new Rejected('garbage', `${logprobs.length} logprobs for ${tokens.length} tokens, or a value that is not a finite log-probability`);
  }
  if (tokens.length > req.maxTokens) throw new Rejected('garbage', `${tokens.length} tokens for max_tokens ${req.maxTokens}`);
  return { tokens, logprobs: logprobs as number[], finish };
}
