import { assertSandboxAvailable, type Limits, type Outcome, type SandboxSpec } from '../../sandbox/sandbox.ts';
import type { CodeTask } from './tasks.ts';
import { PYTEST_SHIM } from '../../sandbox/pytest-shim.ts';
import { runProven, type HarnessSpec } from '../../sandbox/harness.ts';

/** Result of running one candidate program against a task's tests. */
export interface CodeVerdict {
  taskId: string;
  passed: boolean;
  /** The sandbox's outcome, or 'unproven': the run exited 0 without the harness's proof that every check passed. */
  outcome: Outcome | 'unproven';
  reason: string;
  wallMs: number;
}

// MBPP 123's reference takes ~5 s of CPU; the wall limit leaves room for a loaded machine. Processes: the harness,
// the candidate process and what the candidate starts.
export const CODE_LIMITS: Partial<Limits> = { wallMs: 30_000, cpuSeconds: 15, memoryBytes: 1 << 30, outputBytes: 256 << 10, processes: 16 };

export interface CodeRunOptions {
  limits?: Partial<Limits>;
  signal?: AbortSignal;
  /** Passed to the sandbox: accept the unisolated 'rlimit' level (see runtime/sandbox). */
  allowHostNetworkAndPids?: boolean;
  isolation?: SandboxSpec['isolation'];
}

/**
 * Pulls the program out of a model's reply: the first fenced block (```python … ```), or MBPP's [BEGIN] … [DONE],
 * else the text itself.
 */
export function extractCode(text: string): string {
  const fence = /```(?:python|py|Python)?[^\n]*\n([\s\S]*?)(?:```|$)/.exec(text);
  if (fence) return fence[1];
  const begin = /\[BEGIN\]([\s\S]*?)(?:\[DONE\]|$)/.exec(text);
  if (begin) return begin[1];
  return text;
}

/** What the harness runs for `candidate` (a completion for HumanEval, a full program otherwise). */
export function harnessSpec(task: CodeTask, candidate: string): { spec: HarnessSpec; files: Record<string, string> } {
  switch (task.benchmark) {
    case 'humaneval': {
      // HumanEval's official program is prompt + completion; a chat model that restates the whole function is
      // accepted too (the prompt's docstring is a valid body, and the later definition wins). The harness runs the
      // prompt alone (its helpers, e.g. encode_cyclic, are used by some tests) and the tests against the candidate.
      const defines = new RegExp(`^def\\s+${task.entryPoint}\\s*\\(`, 'm').test(candidate);
      const program = defines ? `${task.prompt}\n${candidate}` : task.prompt + candidate;
      return { spec: { mode: 'script', program, setup: task.prompt, test: task.test, names: [task.entryPoint], freeNames: false, checkWith: task.entryPoint }, files: {} };
    }
    case 'mbpp': {
      const imports = task.testImports.join('\n');
      // The candidate sees the test imports too: the old single-file program put them in its module.
      const program = `${candidate}\n${imports}\n`;
      return { spec: { mode: 'script', program, setup: imports, test: task.test, names: task.entryPoint ? [task.entryPoint] : [], freeNames: true, checkWith: null }, files: {} };
    }
    case 'quixbugs': {
      const name = task.entryPoint;
      const files = { ...task.files, 'pytest.py': PYTEST_SHIM, [`python_programs/${name}.py`]: candidate, [`python_testcases/test_${name}.py`]: task.test };
      return { spec: { mode: 'module', program: candidate, testModule: `test_${name}`, programModule: `python_programs.${name}`, name }, files };
    }
  }
}

/**
 * Runs `candidate` against the task's tests in the sandbox. A pass needs the harness's proof line carrying this
 * run's nonce (which the candidate never sees) and exit code 0; anything else is a failure with its reason.
 */
export async function runCodeTask(task: CodeTask, candidate: string, opts: CodeRunOptions = {}): Promise<CodeVerdict> {
  const { spec, files } = harnessSpec(task, candidate);
  const r = await runProven(spec, files, { ...opts, limits: { ...CODE_LIMITS, ...opts.limits } });
  return { taskId: task.id, passed: r.passed, outcome: r.outcome, reason: r.reason, wallMs: r.wallMs };
}

/** Fails fast, before any model call, when untrusted code could not run here (see runtime/sandbox). */
export function assertCodeSandbox(opts: Pick<CodeRunOptions, 'allowHostNetworkAndPids' | 'isolation'> = {}): void {
  assertSandboxAvailable(opts);
}
