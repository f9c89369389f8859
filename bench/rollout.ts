/*
 * Rollout decode throughput: the ORT engine vs PyTorch `generate` on the same weights and the same batch.
 * Both decode greedily to exactly NEW tokens per row (stop ids off / min_new_tokens), CPU, each after a warmup,
 * best of REPS; tokens/s = batch × NEW / wall time of the whole generate call (prefill included on both sides, and
 * the engine's prefix cache off: torch keeps nothing between calls either).
 * Then multi-turn conversations shaped like rollouts (a shared system prompt, a user turn, a tool result after every
 * reply): the same engine with its prefix cache against itself without one, each on a fresh engine.
 * Prints one JSON line per measurement. Usage: npx tsx bench/rollout.ts [batch] [prompt_len] [new_tokens]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OrtEngine } from '../runtime/agent/engines/ort.ts';
import { rng } from '../test/fixtures/conversations.ts';
import { pythonBin, runProcess, tinyOnnxModel } from '../test/fixtures/python.ts';

const [B, P, NEW] = [Number(process.argv[2] ?? 16), Number(process.argv[3] ?? 64), Number(process.argv[4] ?? 64)];
const REPS = 3;
const DIMS = [256, 8, 4, 2, 768]; // hidden, layers, heads, kv_heads, ffn: ~6.6M parameters

async function torchTokensPerSecond(dir: string, prompts: number[][]): Promise<{ tps: number; tokens: number[][] }> {
  let best = Infinity;
  let tokens: number[][] = [];
  for (let r = 0; r < REPS; r++) {
    const out = await runProcess(await pythonBin(), ['test/fixtures/torch_generate.py'], {
      input: JSON.stringify({ model_dir: dir, prompts, max_new_tokens: NEW, eos_token_id: null, batched: true, force_length: true, warmup: true }),
    });
    if (out.code !== 0) throw new Error(`torch_generate.py failed: ${out.stderr.slice(-2000)}`);
    const res = JSON.parse(out.stdout) as { tokens: number[][]; seconds: number };
    best = Math.min(best, res.seconds);
    tokens = res.tokens;
  }
  return { tps: (prompts.length * NEW) / best, tokens };
}

async function ortTokensPerSecond(dir: string, prompts: number[][]): Promise<{ tps: number; tokens: number[][] }> {
  const engine = await OrtEngine.load(dir, { maxBatch: prompts.length, prefixCacheBytes: 0 });
  const reqs = prompts.map((prompt, i) => ({ prompt, maxTokens: NEW, stop: [], temperature: 0, topP: 1, seed: i }));
  await engine.generate(reqs.map((r) => ({ ...r, maxTokens: 2 }))); // warmup
  let best = Infinity;
  let tokens: number[][] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    const out = await engine.generate(reqs);
    best = Math.min(best, (performance.now() - t0) / 1000);
    tokens = out.map((o) => o.tokens);
  }
  await engine.close();
  return { tps: (prompts.length * NEW) / best, tokens };
}

const CONV = { rows: 64, system: 120, turns: 3, reply: 24 };

/** Seconds for CONV.rows conversations of CONV.turns greedy turns, and every row's generated tokens. */
async function conversations(dir: string, cacheBytes: number): Promise<{ s: number; tokens: number[][] }> {
  const r = rng(2);
  const words = (n: number) => Array.from({ length: n }, () => 7 + Math.floor(r() * 400));
  const system = words(CONV.system);
  const prompts = Array.from({ length: CONV.rows }, () => system.concat(words(10 + Math.floor(r() * 20))));
  const results = prompts.map(() => Array.from({ length: CONV.turns }, () => words(20 + Math.floor(r() * 20))));
  const engine = await OrtEngine.load(dir, { maxBatch: CONV.rows, prefixCacheBytes: cacheBytes });
  await engine.generate([{ prompt: words(8), maxTokens: 2, stop: [], temperature: 0, topP: 1, seed: 0 }]); // warmup
  const tokens: number[][] = prompts.map(() => []);
  const t0 = performance.now();
  for (let turn = 0; turn < CONV.turns; turn++) {
    const out = await engine.generate(prompts.map((prompt, i) => ({ prompt, maxTokens: CONV.reply, stop: [], temperature: 0, topP: 1, seed: i })));
    out.forEach((o, i) => { tokens[i].push(...o.tokens); prompts[i] = prompts[i].concat(o.tokens, results[i][turn]); });
  }
  const s = (performance.now() - t0) / 1000;
  await engine.close();
  return { s, tokens };
}

async function main(): Promise<void> {
  const dir = await tinyOnnxModel(0, DIMS);
  const r = rng(1);
  const prompts = Array.from({ length: B }, () => Array.from({ length: P }, () => 7 + Math.floor(r() * 400)));
  const torch = await torchTokensPerSecond(dir, prompts);
  const ort = await ortTokensPerSecond(dir, prompts);
  // torch's min_new_tokens bans eos, while ORT (stop ids off) may emit it and go on: compare up to ORT's first eos
  const eos = (JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { eos_token_ids: number[] }).eos_token_ids;
  const same = ort.tokens.filter((t, i) => {
    const cut = t.findIndex((x) => eos.includes(x));
    const n = cut < 0 ? t.length : cut;
    return JSON.stringify(t.slice(0, n)) === JSON.stringify(torch.tokens[i].slice(0, n));
  }).length;
  const ratio = ort.tps / torch.tps;
  console.log(JSON.stringify({
    bench: 'rollout', metric: `decode_tokens_per_s_b${B}_p${P}_n${NEW}`, value: Math.round(ort.tps), unit: 'tokens/s',
    baseline: Math.round(torch.tps), ratio: Number(ratio.toFixed(2)), goal: 1.5, pass: ratio >= 1.5,
  }));
  console.log(JSON.stringify({
    bench: 'rollout', metric: 'greedy_rows_identical_to_torch_until_eos', value: same, unit: 'rows', baseline: B,
    ratio: Number((same / B).toFixed(2)), goal: 1, pass: same === B,
  }));
  const plain: number[] = [], cached: number[] = [];
  let agree = 0;
  for (let rep = 0; rep < REPS; rep++) {
    const a = await conversations(dir, 0);
    const b = await conversations(dir, 256 << 20);
    plain.push(a.s);
    cached.push(b.s);
    agree = a.tokens.filter((t, i) => JSON.stringify(t) === JSON.stringify(b.tokens[i])).length;
  }
  const [p, c] = [Math.min(...plain), Math.min(...cached)];
  console.log(JSON.stringify({
    bench: 'rollout', metric: `multiturn_seconds_${CONV.rows}x${CONV.turns}_prefix_cache`, value: Number(c.toFixed(2)), unit: 's',
    baseline: Number(p.toFixed(2)), ratio: Number((p / c).toFixed(2)), goal: '>= 1.3x faster than no cache, same greedy tokens',
    pass: p / c >= 1.3 && agree === CONV.rows, rows_with_same_tokens: agree,
  }));
}

await main();
