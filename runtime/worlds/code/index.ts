import { z } from 'zod';
import type { Task } from '../../../schemas/task.ts';
import type { Trajectory } from '../../../schemas/trajectory.ts';
import { runProven, type HarnessSpec } from '../../sandbox/harness.ts';
import { derive31 } from '../../engine/rng.ts';
import { hashValue } from '../hash.ts';
import { splitOf, taskId } from '../tasks.ts';
import { ExecWorld, codeOf, mustRethrow, currentRunner, describeRun, sandboxRun, TOOL_LIMITS, VERIFY_LIMITS, type ExecTaskOptions, type ExecVerdict, type ExecWorldDef } from './exec.ts';
import { generatedSpec, instructionOf, mbppSpec, mbppTrainingRows, specOf, type CodeSpec } from './spec.ts';
import { GENERATED_TASK_COUNT } from './generator.ts';

/*
 * The code world: write one Python function. Tools: run_python (any program, sandboxed; its output comes back)
 * and run_tests (the candidate against the visible asserts, through the trusted harness). The final answer is the
 * function in a ```python block; the verdict runs it against the hidden asserts in the harness's cases mode, so
 * the score (share of hidden asserts passed) is proven by the harness's nonce line, never by the exit code.
 */

export interface CodeState { spec: CodeSpec; runs: number }

const PY = '/usr/bin/python3';

/** The harness spec that runs `code` against `cases` (imports run in both processes, as MBPP's tests expect). */
export function casesSpec(spec: CodeSpec, code: string, cases: string[]): HarnessSpec {
  const imports = spec.imports.join('\n');
  return { mode: 'script', program: `${code}\n${imports}\n`, setup: imports, test: '', names: spec.entryPoint ? [spec.entryPoint] : [], freeNames: true, checkWith: null, cases };
}

/** Runs `code` against `cases` in the sandbox: how many passed (proven), and why the others did not. */
export async function runCases(spec: CodeSpec, code: string, cases: string[], limits = VERIFY_LIMITS, signal?: AbortSignal) {
  const r = await runProven(casesSpec(spec, code, cases), {}, { limits, signal, runner: currentRunner() });
  const passed = r.casesPassed?.length ?? 0;
  return { passed, total: cases.length, outcome: r.outcome, reason: r.reason, all: r.passed && passed === cases.length };
}

const runPython = {
  name: 'run_python', mutates: false,
  description: 'Run a Python program in a sandbox (no network, no files outside its folder, a few seconds of CPU); returns its output.',
  args: z.object({ code: z.string().min(1).max(20_000).describe('the whole program') }),
  async run(s: CodeState, a: { code: string }, ctx: { signal?: AbortSignal }) {
    s.runs++;
    return describeRun(await sandboxRun({ argv: [PY, '-I', 'main.py'], files: { 'main.py': a.code }, limits: TOOL_LIMITS, signal: ctx.signal }));
  },
};

const runTests = {
  name: 'run_tests', mutates: false,
  description: 'Run your function against the task\'s visible tests; returns how many passed and the first failure.',
  args: z.object({ code: z.string().min(1).max(20_000).describe('the function (and any helpers)') }),
  async run(s: CodeState, a: { code: string }, ctx: { signal?: AbortSignal }) {
    s.runs++;
    const r = await runCases(s.spec, a.code, s.spec.visible, TOOL_LIMITS, ctx.signal);
    return { passed: r.passed, total: r.total, result: r.reason };
  },
};

const POLICY = 'You are a Python programmer. Write the function the user asks for. Test it with the tools when useful; ' +
  'answer with the complete function in one ```python block.';

/** Gold: run the reference against the visible tests, then answer with it. */
const goalOf = (s: CodeSpec): Task['goal'] => ({
  final_state_hash: hashValue({ source: s.source, hidden: s.hidden }), required_outputs: [],
  gold_actions: [{ name: 'run_tests', arguments: { code: s.reference } }], must_refuse: false,
  reference_answer: `\`\`\`python\n${s.reference.trimEnd()}\n\`\`\``,
});

/*
 * Task i of a seed: every 8th is the next MBPP training problem (seeded order), the others generated functions
 * (a seeded permutation of the generator's index space, each with inputs drawn from the task seed). The split is a
 * hash of the instruction, as in the tool worlds; an instruction made twice is skipped.
 */
export async function makeCodeTasks(o: ExecTaskOptions): Promise<Task[]> {
  const { seed, n, split = 'train', heldoutFraction = 0.2 } = o;
  const mbpp = mbppTrainingRows();
  const order = [...mbpp.keys()].sort((a, b) => derive31('code-mbpp', seed, a) - derive31('code-mbpp', seed, b));
  const out: Task[] = [];
  const seen = new Set<string>();
  let m = 0;
  for (let i = 0, misses = 0; out.length < n; i++) {
    if (misses > 1000 + 50 * n) throw new Error(`code: cannot make ${n} ${split} tasks (seed ${seed})`);
    const taskSeed = derive31('code', seed, i);
    const spec = i % 8 === 0 && m < order.length ? mbppSpec(mbpp[order[m++]]) : generatedSpec(derive31('code-fn', seed, i) % GENERATED_TASK_COUNT, taskSeed);
    const instruction = instructionOf(spec);
    if (seen.has(instruction) || splitOf('code', instruction, heldoutFraction) !== split) { misses++; continue; }
    seen.add(instruction);
    const tags = [`source:${spec.source}`, `kind:${spec.source.startsWith('mbpp/') ? 'mbpp' : 'generated'}`];
    out.push({ id: taskId('code', split, out.length), world: 'code', instruction, hidden_facts: {}, seed: taskSeed, goal: goalOf(spec), difficulty: spec.difficulty, split, tags });
  }
  return out;
}

/** Reasons that fail a code-world episode whatever its answer scores. */
export function episodeReasons(traj: Trajectory, task: Task): string[] {
  const reasons: string[] = [];
  if (traj.task_id !== task.id) reasons.push(`task_mismatch: trajectory is for ${traj.task_id}, task is ${task.id}`);
  if (traj.world !== task.world) reasons.push(`world_mismatch: ${traj.world} vs ${task.world}`);
  // tool errors are the agent's recoverable mistakes here (a failed edit, a bad argument): the answer decides
  for (const e of traj.errors) if (!e.kind.startsWith('tool_')) reasons.push(`turn_error: ${e.kind} (turn ${e.turn}): ${e.message}`);
  if (traj.finish_reason !== 'answered') reasons.push(`finish_reason: ${traj.finish_reason}, want answered`);
  return reasons;
}

export function finalText(traj: Pick<Trajectory, 'messages'>): string {
  const last = [...traj.messages].reverse().find((m) => m.role === 'assistant');
  return last && last.tool_calls.length === 0 ? last.content : '';
}

async function verifyCode(traj: Trajectory, task: Task, signal?: AbortSignal): Promise<ExecVerdict> {
  const reasons = episodeReasons(traj, task);
  let score = 0;
  try {
    const spec = specOf(task);
    const answer = finalText(traj);
    if (!answer.trim()) reasons.push('no_answer: the episode ended without a final answer');
    else {
      const r = await runCases(spec, codeOf(answer), spec.hidden, VERIFY_LIMITS, signal);
      score = r.total ? r.passed / r.total : 0;
      if (!r.all) reasons.push(`hidden_tests: ${r.passed}/${r.total} passed (${r.outcome}: ${r.reason})`);
    }
  } catch (e) {
    if (mustRethrow(e, signal)) throw e;
    reasons.push(`verify_failed: ${(e as Error).message}`);
  }
  return { trajectory_id: traj.id, task_id: traj.task_id, world: traj.world, pass: reasons.length === 0, reasons, final_state_hash: null, score };
}

export const codeWorld: ExecWorldDef<CodeState> = {
  name: 'code', policy: POLICY, tools: [runPython, runTests],
  init: (task) => ({ spec: specOf(task), runs: 0 }),
  snapshot: (s) => ({ source: s.spec.source }),
  makeTasks: makeCodeTasks,
  verify: verifyCode,
};

export const codeWorldInstance = (): ExecWorld<CodeState> => new ExecWorld(codeWorld);
export { GENERATED_TASK_COUNT };
