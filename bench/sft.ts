/*
 * SFT throughput and peak memory: our runtime node vs TRL's SFTTrainer, same tiny Qwen3, same samples, same
 * machine, one run. TRL lives in a separate bench venv (never a project dependency) that sees the node venv's
 * packages through a .pth file, so torch/transformers are the very same builds.
 *   npx tsx bench/sft.ts [--steps 20] [--batch 8] [--max-len 512]
 * Prints one JSON line per metric: {"bench","metric","value","unit","baseline","ratio","goal","pass"}.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensurePythonEnv, GPU_DIR, venvDirFor } from '../runtime/node/env.ts';
import { runNode } from '../runtime/node/client.ts';
import { InitModelResult, TrainSftResult } from '../runtime/node/protocol.ts';
import { CHAT_TEMPLATE } from '../runtime/agent/chat-template.ts';

const TRL_PIN = 'trl==1.16.0';
const { values: args } = parseArgs({ options: {
  steps: { type: 'string', default: '20' }, batch: { type: 'string', default: '8' }, 'max-len': { type: 'string', default: '512' },
} });
const steps = Number(args.steps), batch = Number(args.batch), maxLen = Number(args['max-len']);

function sh(cmd: string, argv: string[], what: string): string {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, PYTHONPATH: GPU_DIR } });
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}):\n${(r.stderr ?? '').slice(-3000)}`);
  return r.stdout;
}

/** bench venv = empty venv + .pth to the node venv's site-packages + TRL; keyed like the node venv. */
function benchPython(nodePython: string, nodeVenv: string): string {
  const dir = join(dirname(venvDirFor(join(GPU_DIR, 'requirements.txt'))), `bench-trl-${nodeVenv.split('venv-').pop()}`);
  const py = join(dir, 'bin', 'python');
  if (existsSync(join(dir, '.ready'))) return py;
  sh('python3', ['-m', 'venv', dir], 'creating the bench venv');
  const site = sh(nodePython, ['-c', 'import site; print(site.getsitepackages()[0])'], 'locating site-packages').trim();
  const own = readdirSync(join(dir, 'lib')).map((v) => join(dir, 'lib', v, 'site-packages'))[0];
  writeFileSync(join(own, 'agentforge-node.pth'), `${site}\n`);
  sh(py, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', TRL_PIN], `pip install ${TRL_PIN}`);
  writeFileSync(join(dir, '.ready'), TRL_PIN);
  return py;
}

function line(metric: string, value: number, unit: string, baseline: number, goal: number, higherIsBetter: boolean) {
  const ratio = value / baseline;
  console.log(JSON.stringify({ bench: 'sft', metric, value: Math.round(value), unit, baseline: Math.round(baseline),
    ratio: Number(ratio.toFixed(3)), goal, pass: higherIsBetter ? ratio >= goal : ratio <= goal }));
}

const env = await ensurePythonEnv();
const trlPython = benchPython(env.python, env.venvDir);
const work = mkdtempSync(join(tmpdir(), 'af-bench-sft-'));
const corpus = Array.from({ length: 400 }, (_, i) => `<|im_start|>user\nstep ${i}: add ${i} and ${i * 7}<|im_end|>\n` +
  `<|im_start|>assistant\n<tool_call>\n{"name": "add", "arguments": {"a": ${i}, "b": ${i * 7}}}\n</tool_call><|im_end|>\n`);
const model = join(work, 'model');
const init = await runNode('init-model', { out_dir: model, chat_template: CHAT_TEMPLATE, texts: corpus, vocab_size: 2048,
  max_position_embeddings: maxLen }, { python: env.python, result: InitModelResult });
sh(env.python, [join(GPU_DIR, 'bench', 'make_shards.py'), join(work, 'data'), String(batch * steps * 4), String(init.vocab_size), String(maxLen), '0'], 'making shards');

const ours = await runNode('train-sft', { model_dir: model, shards: [join(work, 'data', 'shards.parquet')], out_dir: join(work, 'ours'),
  max_steps: steps, batch_size: batch, micro_batch_size: batch, warmup_steps: 2 }, { python: env.python, result: TrainSftResult });
const trl = JSON.parse(sh(trlPython, [join(GPU_DIR, 'bench', 'trl_sft.py'), model, join(work, 'data', 'samples.jsonl'), join(work, 'trl'),
  String(steps), String(batch), String(maxLen)], 'TRL SFTTrainer').trim().split('\n').pop()!) as { tokens_per_s: number; peak_memory_bytes: number };

console.error(`model: ${init.num_parameters.toLocaleString('en-US')} params on ${ours.device}; ${steps} steps × ${batch} × ≤${maxLen} tokens`);
line('tokens_per_s', ours.tokens_per_s ?? 0, 'tokens/s', trl.tokens_per_s, 1.3, true);
line('peak_memory_bytes', ours.peak_memory_bytes, 'bytes', trl.peak_memory_bytes, 1.0, false);
