/*
 * RL trainer throughput: our rl_session step vs TRL's GRPOTrainer, same tiny Qwen3, same group size, batch,
 * prompt and completion lengths, same machine, one run. Generation is EXCLUDED on both sides: ours is the step
 * request as the RL loop sends it (rollout rows in -> loss, backward, AdamW, checkpoint off, ONNX weights refresh
 * for the engines, result out); TRL's is the wall time of each optimizer step minus the time spent inside
 * `_generate_and_score_completions` (generation + rewards + advantages), measured by wrapping that method.
 * Both skip the first (warm-up) step. Same defaults on both sides: token-level (DAPO) loss, beta 0, one update per
 * batch, clip 0.2.
 * TRL lives in a bench venv (never a project dependency) under ${AGENTFORGE_CACHE ?? ~/.cache/agentforge}, seeing
 * the node venv's torch/transformers through a .pth file (same builds); AGENTFORGE_BENCH_TRL_PYTHON overrides.
 *   npx tsx bench/rl.ts [--steps 6] [--groups 2] [--group-size 8] [--prompt 64] [--completion 64]
 * Prints one JSON line per metric: {"bench","metric","value","unit","baseline","ratio","goal","pass"}.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensurePythonEnv, GPU_DIR, venvDirFor } from '../runtime/node/env.ts';
import { runNode } from '../runtime/node/client.ts';
import { InitModelResult } from '../runtime/node/protocol.ts';
import { withAdvantages, type ScoredSample } from '../runtime/rl/advantages.ts';
import { RlSession } from '../runtime/node/rl-session.ts';
import { CHAT_TEMPLATE } from '../runtime/agent/chat-template.ts';

const TRL_PIN = 'trl==1.16.0';
const { values: args } = parseArgs({ options: {
  steps: { type: 'string', default: '6' }, groups: { type: 'string', default: '2' },
  'group-size': { type: 'string', default: '8' }, prompt: { type: 'string', default: '64' },
  completion: { type: 'string', default: '64' },
} });
const steps = Number(args.steps), groups = Number(args.groups), groupSize = Number(args['group-size']);
const promptLen = Number(args.prompt), complLen = Number(args.completion);
const batch = groups * groupSize;

function sh(cmd: string, argv: string[], what: string): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, PYTHONPATH: GPU_DIR } });
  return { ok: r.status === 0, out: r.stdout ?? '', err: `${what} exited ${r.status}: ${(r.stderr ?? '').slice(-2000)}` };
}

/** The bench venv (shared with bench/sft.ts: same dir, same pin), or the reason it cannot be had. */
function trlPython(nodePython: string, nodeVenv: string): { py?: string; why?: string } {
  if (process.env.AGENTFORGE_BENCH_TRL_PYTHON) return { py: process.env.AGENTFORGE_BENCH_TRL_PYTHON };
  const dir = join(dirname(venvDirFor(join(GPU_DIR, 'requirements.txt'))), `bench-trl-${nodeVenv.split('venv-').pop()}`);
  const py = join(dir, 'bin', 'python');
  if (existsSync(join(dir, '.ready'))) return { py };
  let r = sh('python3', ['-m', 'venv', dir], 'python3 -m venv');
  if (!r.ok) return { why: r.err };
  r = sh(nodePython, ['-c', 'import site; print(site.getsitepackages()[0])'], 'locating site-packages');
  if (!r.ok) return { why: r.err };
  const own = readdirSync(join(dir, 'lib')).map((v) => join(dir, 'lib', v, 'site-packages'))[0];
  writeFileSync(join(own, 'agentforge-node.pth'), `${r.out.trim()}\n`);
  r = sh(py, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', TRL_PIN], `pip install ${TRL_PIN}`);
  if (!r.ok) return { why: `${r.err} (offline? TRL is only needed for this baseline)` };
  writeFileSync(join(dir, '.ready'), TRL_PIN);
  return { py };
}

const TRL_SCRIPT = String.raw`
import json, random, sys, time
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import GRPOConfig, GRPOTrainer
model_dir, out_dir, steps, groups, gsize, plen, clen = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8])
tok = AutoTokenizer.from_pretrained(model_dir)
rng = random.Random(0)
prompts = [tok.decode([rng.randrange(10, tok.vocab_size) for _ in range(plen)]) for _ in range(groups * steps)]
ds = Dataset.from_list([{"prompt": p} for p in prompts])
reward = lambda completions, **kw: [rng.random() for _ in completions]
cuda = torch.cuda.is_available()
cfg = GRPOConfig(output_dir=out_dir, max_steps=steps, per_device_train_batch_size=groups * gsize, num_generations=gsize,
                 max_completion_length=clen, learning_rate=1e-6, beta=0.0, logging_steps=1000, save_strategy="no",
                 report_to=[], use_cpu=not cuda, bf16=cuda, dataloader_num_workers=0, seed=0, temperature=1.0)
trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), reward_funcs=reward,
                      args=cfg, train_dataset=ds, processing_class=tok)
gen = {"s": 0.0}
orig = trainer._generate_and_score_completions
def timed(*a, **k):
    t = time.perf_counter(); out = orig(*a, **k); gen["s"] += time.perf_counter() - t
    gen["tokens"] = int(out["completion_mask"].sum()); return out
trainer._generate_and_score_completions = timed
class Clock(TrainerCallback):
    def __init__(self): self.rows = []
    def on_step_begin(self, *a, **k): self.t, gen["s"] = time.perf_counter(), 0.0
    def on_step_end(self, *a, **k):
        self.rows.append((time.perf_counter() - self.t, gen["s"], gen.get("tokens", 0)))
clock = Clock(); trainer.add_callback(clock); trainer.train()
rows = clock.rows[1:]
step_s = sum(r[0] for r in rows); gen_s = sum(r[1] for r in rows)
print(json.dumps({"train_s_per_step": (step_s - gen_s) / len(rows), "step_s": step_s / len(rows),
                  "gen_s": gen_s / len(rows), "completion_tokens": sum(r[2] for r in rows) / len(rows)}), file=sys.__stdout__)
`;

function line(metric: string, value: number, unit: string, baseline: number | null, goal: number, why?: string) {
  const ratio = baseline ? value / baseline : null;
  console.log(JSON.stringify({ bench: 'rl', metric, value: Number(value.toFixed(3)), unit,
    baseline: baseline === null ? null : Number(baseline.toFixed(3)), ratio: ratio === null ? null : Number(ratio.toFixed(3)),
    goal, pass: ratio === null ? null : ratio >= goal, ...(why ? { reason: why } : {}) }));
}

/** Synthetic rollout rows with the bench's shape: group-varying rewards, ~uniform behaviour logprobs. */
function rollouts(step: number, vocab: number): ScoredSample[] {
  let s = step * 7919 + 1;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const rows: ScoredSample[] = [];
  for (let g = 0; g < groups; g++) {
    const prompt = Array.from({ length: promptLen }, () => 10 + Math.floor(rand() * (vocab - 10)));
    for (let i = 0; i < groupSize; i++) {
      const ids = [...prompt, ...Array.from({ length: complLen }, () => 10 + Math.floor(rand() * (vocab - 10)))];
      const mask = ids.map((_, j) => (j >= promptLen ? 1 : 0));
      rows.push({ input_ids: ids, loss_mask: mask, behaviour_logprobs: mask.map((m) => (m ? -Math.log(vocab) : 0)),
        group_id: `s${step}g${g}`, reward: rand() });
    }
  }
  return rows;
}

const env = await ensurePythonEnv();
const work = mkdtempSync(join(tmpdir(), 'af-bench-rl-'));
const corpus = Array.from({ length: 400 }, (_, i) => `<|im_start|>user\nstep ${i}: add ${i} and ${i * 7}<|im_end|>\n` +
  `<|im_start|>assistant\n<tool_call>\n{"name": "add", "arguments": {"a": ${i}, "b": ${i * 7}}}\n</tool_call><|im_end|>\n`);
const model = join(work, 'model');
const init = await runNode('init-model', { out_dir: model, chat_template: CHAT_TEMPLATE, texts: corpus, vocab_size: 2048,
  max_position_embeddings: 512 }, { python: env.python, result: InitModelResult });

const session = await RlSession.start({ python: env.python });
const common = { model_dir: model, lr: 1e-6, micro_batch_size: batch, export_dir: join(work, 'onnx') };
await session.state(common);
const times: number[] = [];
let exportS = 0;
for (let v = 1; v <= steps; v++) {
  const rows = rollouts(v, init.vocab_size);
  const t0 = performance.now();
  const r = await session.step({ ...common, step: v, samples: withAdvantages(rows, { scale_rewards: true, adv_eps: 1e-6 }) });
  if (v > 1) { times.push((performance.now() - t0) / 1000); exportS += r.export?.seconds ?? 0; }
}
await session.close();
const oursStep = times.reduce((a, b) => a + b, 0) / times.length;
console.error(`model ${init.num_parameters.toLocaleString('en-US')} params; ${groups} groups x ${groupSize}, prompt ${promptLen} + ` +
  `completion ${complLen} tokens; ours ${oursStep.toFixed(3)} s/step (ONNX weights refresh ${(exportS / times.length).toFixed(3)} s)`);

const trl = trlPython(env.python, env.venvDir);
let base: { train_s_per_step: number; step_s: number; gen_s: number; completion_tokens: number } | undefined;
let why = trl.why;
if (trl.py) {
  writeFileSync(join(work, 'trl_grpo.py'), TRL_SCRIPT);
  const r = sh(trl.py, [join(work, 'trl_grpo.py'), model, join(work, 'trl'), String(steps), String(groups), String(groupSize),
    String(promptLen), String(complLen)], 'TRL GRPOTrainer');
  if (r.ok) base = JSON.parse(r.out.trim().split('\n').pop()!);
  else why = r.err;
}
if (base) {
  console.error(`TRL: ${base.step_s.toFixed(3)} s/step of which generation+scoring ${base.gen_s.toFixed(3)} s; ` +
    `${base.completion_tokens.toFixed(0)} completion tokens/step (ours ${batch * complLen})`);
  line('train_samples_per_s', batch / oursStep, 'samples/s (generation excluded)', batch / base.train_s_per_step, 1.3);
  line('train_tokens_per_s', (batch * complLen) / oursStep, 'completion tokens/s (generation excluded)',
    base.completion_tokens / base.train_s_per_step, 1.3);
} else {
  line('train_samples_per_s', batch / oursStep, 'samples/s (generation excluded)', null, 1.3, `TRL baseline unavailable: ${why}`);
}
