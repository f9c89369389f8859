import { dag, type DagBuilder, type NodeRef } from '../runtime/engine/dag.ts';
import type { FilesSpec, TableSpec } from '../runtime/engine/operator.ts';
import { loadModel } from '../operators/load-model.ts';
import { exportOnnx } from '../operators/export-onnx.ts';
import { evalBfcl } from '../operators/eval-bfcl.ts';
import { evalTau } from '../operators/eval-tau.ts';
import { evalCode } from '../operators/eval-code.ts';
import { evalResults } from '../operators/eval-results.ts';

/**
 * Public agentic benchmarks, offline: BFCL (11 single-turn categories), τ-bench retail + airline (pass^k), HumanEval,
 * MBPP-sanitized and QuixBugs (pass@k, sandboxed) → one results table (`results`).
 *
 * What is evaluated (env, read when the DAG is loaded):
 *  - BENCH_AGENT=endpoint (default): an OpenAI-compatible server, AGENTFORGE_OPENAI_BASE_URL + AGENTFORGE_OPENAI_MODEL
 *    (+ AGENTFORGE_OPENAI_API_KEY); the τ-bench user simulator uses the same endpoint unless BENCH_TAU_USER=scripted.
 *  - BENCH_MODEL=<dir or org/name>: a Hugging Face model (load-model → export-onnx) evaluated in-process on
 *    onnxruntime-node through the local-model ChatPolicy (runtime/agent/local-policy.ts).
 *  - BENCH_AGENT=oracle: the benchmarks' reference answers — a self-test of the harness (expect ~100%).
 * Size: BENCH_LIMIT=N keeps the first N entries/tasks per category; BENCH_TAU_TRIALS=k (pass^1…k);
 * BENCH_CODE_SAMPLES=n (pass@1/10/100 up to n).
 */
export interface BenchmarksOptions {
  agent: 'endpoint' | 'oracle' | 'model';
  /** load-model source (dir or org/name) when agent is 'model'. */
  modelSource?: string;
  limit?: number;
  trials?: number;
  samples?: number;
  tauUser?: 'endpoint' | 'scripted';
  label?: string;
  /** Generation cap per reply (agent 'model': a tiny or untrained model may otherwise write until its context is full). */
  maxTokens?: number;
}

/** The benchmark nodes (ids under `prefix`) for one agent, or the local model wired in `model` (an ONNX export). */
export function benchmarkSuite(d: DagBuilder, o: BenchmarksOptions & { prefix?: string }, model?: NodeRef<FilesSpec>): NodeRef<TableSpec> {
  const id = (s: string) => (o.prefix ?? '') + s;
  const common = { agent: o.agent, limit: o.limit, ...(o.maxTokens ? { max_tokens: o.maxTokens } : {}) };
  const user = o.tauUser ?? (o.agent === 'endpoint' ? 'endpoint' : 'scripted');
  const bfcl = d.node(id('bfcl'), evalBfcl, common, { model });
  const tau = (['retail', 'airline'] as const).map((domain) =>
    d.node(id(`tau_${domain}`), evalTau, { ...common, domain, split: 'test', trials: o.trials ?? 1, user }, { model }));
  const code = (['humaneval', 'mbpp', 'quixbugs'] as const).map((benchmark) =>
    d.node(id(benchmark), evalCode, { ...common, benchmark, samples: o.samples ?? 1 }, { model }));
  return d.node(id('results'), evalResults, { agent: o.label ?? o.modelSource ?? o.agent }, { bfcl, tau, code });
}

export function benchmarksDag(o: BenchmarksOptions) {
  return dag('benchmarks', (d) => {
    const model = o.modelSource ? d.node('onnx', exportOnnx, {}, { model: d.node('model', loadModel, { source: o.modelSource }) }) : undefined;
    benchmarkSuite(d, o, model);
  });
}

const env = process.env;
export default benchmarksDag({
  agent: env.BENCH_MODEL ? 'model' : ((env.BENCH_AGENT ?? 'endpoint') as BenchmarksOptions['agent']),
  modelSource: env.BENCH_MODEL,
  limit: env.BENCH_LIMIT ? Number(env.BENCH_LIMIT) : undefined,
  trials: Number(env.BENCH_TAU_TRIALS ?? 1),
  samples: Number(env.BENCH_CODE_SAMPLES ?? 1),
  tauUser: env.BENCH_TAU_USER as BenchmarksOptions['tauUser'],
  label: env.BENCH_MODEL ?? (env.BENCH_AGENT === 'oracle' ? 'oracle' : env.AGENTFORGE_OPENAI_MODEL),
});
