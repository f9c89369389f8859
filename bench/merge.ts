/*
 * Merge benchmark (npx tsx bench/merge.ts). Generates a base and two fine-tunes (Llama-shaped, fp32, sharded,
 * ~1.1 GB in all) in a temp dir, then measures, on the same files and in the same run:
 *  - each method's throughput (input MB / merge seconds) against a plain sequential read of the same inputs (each
 *    side the best of two runs; the read goes into a page-aligned buffer, see read() in runtime/node/bench/merge_bench.py);
 *  - each merge's peak RSS (VmHWM) against the size of one input model (streaming must stay well below it);
 *  - mergekit (pip-installed into a bench venv) on the same inputs and method: max |ours − theirs| and wall time,
 *    both as processes (interpreter start included). DARE is left out of that comparison: both draw random masks,
 *    from different generators. When mergekit cannot be installed, its lines say why, with pass: null.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePythonEnv, GPU_DIR } from '../runtime/node/env.ts';
import { emit } from './report.ts';

// ≈ 92M params, 368 MB fp32 per model; BENCH_MERGE_SMALL=1 shrinks everything to a seconds-long smoke run.
const SMALL = process.env.BENCH_MERGE_SMALL === '1';
const SHAPE = SMALL ? { hidden: 64, layers: 2, inter: 128, vocab: 1000 } : { hidden: 768, layers: 6, inter: 2048, vocab: 32000 };
const SHARD = SMALL ? 100_000 : 150_000_000;
const MERGEKIT = 'mergekit==0.1.5';

interface Method { name: string; spec: Record<string, unknown>; base: boolean; experts: number; mergekit?: (d: Dirs) => string }
interface Dirs { base: string; e0: string; e1: string }
interface MergeRun { seconds: number; seconds_statistics: number; bytes_in: number; rss_before_kb: number; peak_rss_kb: number; largest_tensor_bytes: number }

const METHODS: Method[] = [
  { name: 'linear', spec: { method: 'linear', weights: [0.3, 0.7] }, base: false, experts: 2,
    mergekit: (d) => `merge_method: linear\nmodels:\n  - model: ${d.e0}\n    parameters: {weight: 0.3}\n  - model: ${d.e1}\n    parameters: {weight: 0.7}\ndtype: float32\n` },
  { name: 'task_arithmetic', spec: { method: 'task_arithmetic', weights: [1, 0.5], lam: 0.8 }, base: true, experts: 2,
    mergekit: (d) => `merge_method: task_arithmetic\nbase_model: ${d.base}\nmodels:\n  - model: ${d.e0}\n    parameters: {weight: 1.0}\n  - model: ${d.e1}\n    parameters: {weight: 0.5}\nparameters: {lambda: 0.8}\ndtype: float32\n` },
  { name: 'ties', spec: { method: 'ties', density: 0.5 }, base: true, experts: 2,
    mergekit: (d) => `merge_method: ties\nbase_model: ${d.base}\nmodels:\n  - model: ${d.e0}\n    parameters: {weight: 1.0, density: 0.5}\n  - model: ${d.e1}\n    parameters: {weight: 1.0, density: 0.5}\ndtype: float32\n` },
  { name: 'dare_ties', spec: { method: 'dare', drop_rate: 0.5, dare_combine: 'ties', seed: 1 }, base: true, experts: 2 },
  { name: 'slerp', spec: { method: 'slerp', t: 0.3 }, base: true, experts: 1,
    mergekit: (d) => `merge_method: slerp\nbase_model: ${d.base}\nmodels:\n  - model: ${d.base}\n  - model: ${d.e0}\nparameters: {t: 0.3}\ndtype: float32\n` },
];

function py<T>(python: string, args: string[]): T {
  const out = execFileSync(python, [join(GPU_DIR, 'bench', 'merge_bench.py'), ...args], {
    cwd: GPU_DIR, env: { ...process.env, PYTHONPATH: GPU_DIR }, encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

const inputsOf = (m: Method, d: Dirs) => (m.base ? [d.base] : []).concat([d.e0, d.e1].slice(0, m.experts));

/** Our merge through the real protocol command, timed as a process (the same way mergekit is timed). */
function oursAsProcess(python: string, m: Method, d: Dirs, out: string): number {
  const req = { ...m.spec, base: m.base ? d.base : null, experts: [d.e0, d.e1].slice(0, m.experts), out, max_shard_bytes: SHARD };
  const t = performance.now();
  const r = spawnSync(python, ['-m', 'agentforge_node', 'merge'], { cwd: GPU_DIR, env: { ...process.env, PYTHONPATH: GPU_DIR }, input: JSON.stringify(req), encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`merge ${m.name} failed: ${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`);
  return (performance.now() - t) / 1000;
}

/** A venv for mergekit that reuses the node env's torch/transformers through a .pth file (no second torch download). */
function mergekitEnv(python: string): { bin?: string; reason?: string } {
  const dir = join(process.env.AGENTFORGE_CACHE ?? join(homedir(), '.cache', 'agentforge'), 'bench-mergekit');
  const bin = join(dir, 'bin', 'mergekit-yaml');
  if (existsSync(join(dir, '.ready'))) return { bin };
  try {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    execFileSync(python, ['-m', 'venv', dir], { stdio: 'ignore' });
    const site = (p: string) => execFileSync(p, ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], { encoding: 'utf8' }).trim();
    writeFileSync(join(site(join(dir, 'bin', 'python')), 'agentforge-node-env.pth'), `${site(python)}\n`);
    execFileSync(join(dir, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', MERGEKIT], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 900_000 });
    writeFileSync(join(dir, '.ready'), MERGEKIT);
    return { bin };
  } catch (e) {
    return { reason: `could not install ${MERGEKIT} into ${dir}: ${String((e as { stderr?: Buffer }).stderr ?? e).slice(-400)}` };
  }
}

function benchMergekit(python: string, d: Dirs, work: string) {
  const env = mergekitEnv(python);
  for (const m of METHODS.filter((x) => x.mergekit)) {
    if (!env.bin) {
      emit({ bench: 'merge', metric: `mergekit_max_abs_diff_${m.name}`, value: NaN, unit: 'abs', baseline: null, ratio: null, goal: '<= 1e-6', pass: null, reason: env.reason });
      continue;
    }
    const ours = join(work, `ours-${m.name}`);
    const theirs = join(work, `mk-${m.name}`);
    const cfg = join(work, `${m.name}.yml`);
    writeFileSync(cfg, m.mergekit!(d));
    const oursS = oursAsProcess(python, m, d, ours);
    const t = performance.now();
    const r = spawnSync(env.bin, [cfg, theirs, '--no-copy-tokenizer', '--quiet', '--out-shard-size', SMALL ? '1M' : '150M'], { encoding: 'utf8' });
    const theirsS = (performance.now() - t) / 1000;
    if (r.status !== 0) {
      emit({ bench: 'merge', metric: `mergekit_max_abs_diff_${m.name}`, value: NaN, unit: 'abs', baseline: null, ratio: null, goal: '<= 1e-6', pass: null, reason: `mergekit failed: ${r.stderr.slice(-400)}` });
    } else {
      const c = py<{ max_abs_diff: number | null; 'elements_over_1e-6': number; elements: number; error?: string }>(python, ['compare', ours, theirs]);
      emit({ bench: 'merge', metric: `mergekit_max_abs_diff_${m.name}`, value: c.max_abs_diff ?? NaN, unit: 'abs', baseline: null, ratio: null,
        goal: '<= 1e-6', pass: c.max_abs_diff !== null && c.max_abs_diff <= 1e-6, elements_over_1e6: c['elements_over_1e-6'], elements: c.elements, error: c.error });
      emit({ bench: 'merge', metric: `mergekit_time_${m.name}`, value: oursS, unit: 's', baseline: theirsS, ratio: oursS / theirsS, goal: 'ratio <= 1 (process wall time, same inputs)', pass: oursS <= theirsS });
    }
    rmSync(ours, { recursive: true, force: true });
    rmSync(theirs, { recursive: true, force: true });
  }
}

async function main() {
  const python = (await ensurePythonEnv()).python;
  const work = mkdtempSync(join(tmpdir(), 'af-bench-merge-'));
  try {
    const gen = py<{ dirs: string[]; bytes: number }>(python, ['gen', work, '2', ...Object.values(SHAPE).map(String), String(SHARD)]);
    const [base, e0, e1] = gen.dirs;
    const d: Dirs = { base, e0, e1 };
    const modelMB = gen.bytes / 3 / 1e6;
    for (const m of METHODS) {
      const ins = inputsOf(m, d);
      const reads = [0, 1].map(() => py<{ bytes: number; seconds: number }>(python, ['read', ...ins]));
      const readMBs = Math.max(...reads.map((r) => r.bytes / 1e6 / r.seconds));
      const out = join(work, `out-${m.name}`);
      const spec = JSON.stringify({ ...m.spec, max_shard_bytes: SHARD });
      // Best of two, like the read: on a shared machine a single sample of either side is mostly noise.
      const runs = [0, 1].map(() => {
        const run = py<MergeRun>(python, ['merge', spec, out, m.base ? base : '-', ...[e0, e1].slice(0, m.experts)]);
        rmSync(out, { recursive: true, force: true });
        return run;
      });
      const r = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
      const mbs = r.bytes_in / 1e6 / r.seconds;
      // TIES (top-k thresholds) and SLERP (norms) need a statistic of each whole tensor before its first output
      // element, so they read every input twice where the plain read reads it once: their ceiling is ~0.5x.
      const passes = r.seconds_statistics > 0 ? 2 : 1;
      emit({ bench: 'merge', metric: `throughput_${m.name}`, value: mbs, unit: 'MB/s', baseline: readMBs, ratio: mbs / readMBs, goal: '>= 0.8x plain read of the same files', pass: mbs / readMBs >= 0.8, input_mb: r.bytes_in / 1e6,
        passes_over_inputs: passes, ceiling_ratio: 1 / passes, statistics_s: r.seconds_statistics, output_pass_s: r.seconds - r.seconds_statistics,
        read_s: r.bytes_in / 1e6 / readMBs });
      // Streaming means the merge holds a few tensors, whatever the model size: count the peak above the
      // interpreter's own footprint in units of the largest tensor (fp32), and compare it with one input model
      // (the worse of the two runs).
      const rss = runs.reduce((a, b) => (b.peak_rss_kb - b.rss_before_kb > a.peak_rss_kb - a.rss_before_kb ? b : a));
      const peakMB = rss.peak_rss_kb / 1024;
      const extraMB = (rss.peak_rss_kb - rss.rss_before_kb) / 1024;
      const tensors = (extraMB * 1024 * 1024) / rss.largest_tensor_bytes;
      emit({ bench: 'merge', metric: `peak_rss_${m.name}`, value: peakMB, unit: 'MB', baseline: modelMB, ratio: extraMB / modelMB,
        goal: 'peak above the interpreter (ratio: vs one input model) <= 10 largest tensors', pass: tensors <= 10,
        rss_after_imports_mb: rss.rss_before_kb / 1024, extra_mb: extraMB, extra_in_largest_tensors: tensors, largest_tensor_mb: rss.largest_tensor_bytes / 1e6 });
    }
    benchMergekit(python, d, work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
