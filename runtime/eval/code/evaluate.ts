import { runSandboxed, type Limits, type Outcome } from '../../sandbox/sandbox.ts';
import type { CodeTask } from './tasks.ts';
import { PYTEST_SHIM, RUNNER } from './pytest-shim.ts';

/** Result of running one candidate program against a task's tests. */
export interface CodeVerdict {
  taskId: string;
  passed: boolean;
  outcome: Outcome;
  reason: string;
  wallMs: number;
}

// MBPP 123's reference takes ~5 s of CPU; the wall limit leaves room for a loaded machine.
export const CODE_LIMITS: Partial<Limits> = { wallMs: 30_000, cpuSeconds: 15, memoryBytes: 1 << 30, outputBytes: 256 << 10, processes: 16 };
const PY = '/usr/bin/python3';

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

/** The files and argv that test `candidate` (a completion for HumanEval, a full program otherwise). */
export function programFor(task: CodeTask, candidate: string): { files: Record<string, string>; argv: string[] } {
  switch (task.benchmark) {
    case 'humaneval': {
      // HumanEval's official program is prompt + completion; a chat model that restates the whole function is
      // accepted too (the prompt's docstring is a valid body, and the later definition wins).
      const defines = new RegExp(`^def\\s+${task.entryPoint}\\s*\\(`, 'm').test(candidate);
      const body = defines ? `${task.prompt}\n${candidate}` : task.prompt + candidate;
      return { files: { 'main.py': `${body}\n${task.test}\ncheck(${task.entryPoint})\n` }, argv: [PY, 'main.py'] };
    }
    case 'mbpp':
      return { files: { 'main.py': `${candidate}\n${task.testImports.join('\n')}\n${task.test}\n` }, argv: [PY, 'main.py'] };
    case 'quixbugs': {
      const name = task.entryPoint;
      const files = { ...task.files, 'pytest.py': PYTEST_SHIM, 'run_tests.py': RUNNER, [`python_programs/${name}.py`]: candidate, [`python_testcases/test_${name}.py`]: task.test };
      return { files, argv: [PY, 'run_tests.py', `test_${name}`] };
    }
  }
}

export async function runCodeTask(task: CodeTask, candidate: string, limits: Partial<Limits> = CODE_LIMITS, signal?: AbortSignal): Promise<CodeVerdict> {
  const { files, argv } = programFor(task, candidate);
  const r = await runSandboxed({ argv, files, limits, signal });
  let reason = r.reason;
  if (task.benchmark === 'quixbugs' && (r.outcome === 'ok' || r.outcome === 'nonzero_exit')) reason = quixReason(r.stdout) ?? reason;
  return { taskId: task.id, passed: r.ok, outcome: r.outcome, reason, wallMs: r.wallMs };
}

function quixReason(stdout: string): string | null {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    const s = JSON.parse(line) as { passed: number; failed: number; skipped: number; first_failure: string | null };
    return `${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped${s.first_failure ? `; first failure ${s.first_failure}` : ''}`;
  } catch { return null; }
}
