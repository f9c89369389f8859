import type { Message } from '../../schemas/message.ts';
import type { Task } from '../../schemas/task.ts';
import type { ChatPolicy, ChatRequest } from './policy.ts';
import { Rng } from '../engine/rng.ts';
import { specOf } from '../worlds/code/spec.ts';
import { repoSpecOf } from '../worlds/repo/index.ts';

/*
 * The scripted teacher of the program-running worlds. Each trajectory of a task follows one of several valid
 * solution paths, chosen by its seed so the k samples of a task take different ones (seed mod the number of
 * paths): code — answer directly, test first, explore with run_python then test, or a recoverable failure (a
 * first attempt under a misspelt name that run_tests shows failing, then the right one); repo — read-then-edit, test-first,
 * search-first, or a recoverable failure (an edit whose `old` text is not in the file, then a re-read and the
 * right edit). With noise, a trajectory instead makes one unrecoverable mistake (a wrong final answer, a submit
 * without a fix), labelled in the teacher's name. Like the tool-world teacher it is stateless: the step index is
 * the number of assistant messages so far.
 */

export const CODE_PATHS = ['test_first', 'explore', 'recover', 'direct'] as const;
export const REPO_PATHS = ['read_then_edit', 'test_first', 'search_first', 'recover'] as const;
export const CODE_NOISE = ['wrong_answer', 'no_test_wrong'] as const;
export const REPO_NOISE = ['submit_unfixed', 'wrong_fix'] as const;

type Step = { call: string; args: Record<string, unknown> } | { say: string };

const fence = (code: string) => `\`\`\`python\n${code.trimEnd()}\n\`\`\``;

/** A plausible wrong attempt: the first integer constant off by one, else a function that returns None. */
export function wrongAttempt(reference: string, entryPoint: string): string {
  const lines = reference.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (/^\s*def\s/.test(lines[i])) continue;
    const m = /\b(\d+)\b/.exec(lines[i]);
    if (m) { lines[i] = lines[i].slice(0, m.index) + String(Number(m[1]) + 1) + lines[i].slice(m.index + m[1].length); return lines.join('\n'); }
  }
  return `def ${entryPoint}(*args, **kwargs):\n    return None\n`;
}

/** A first attempt the visible tests always reject: the function under a misspelt name (the tests call the right one). */
export const misnamed = (reference: string, entryPoint: string): string =>
  reference.replace(new RegExp(`^def\\s+${entryPoint}\\s*\\(`, 'm'), `def ${entryPoint}_v1(`);

function codeSteps(task: Task, path: string, noise: string | null): Step[] {
  const s = specOf(task);
  const ref = s.reference;
  const wrong = wrongAttempt(ref, s.entryPoint);
  if (noise === 'wrong_answer') return [{ call: 'run_tests', args: { code: wrong } }, { say: fence(wrong) }];
  if (noise === 'no_test_wrong') return [{ say: fence(wrong) }];
  const example = /^assert\s+(.*?)\s*==/.exec(s.visible[0] ?? '')?.[1];
  switch (path) {
    case 'direct': return [{ say: fence(ref) }];
    case 'explore': return [
      { call: 'run_python', args: { code: `${ref}\n${s.imports.join('\n')}\nprint(${example ?? 'None'})\n` } },
      { call: 'run_tests', args: { code: ref } }, { say: fence(ref) }];
    case 'recover': return [{ call: 'run_tests', args: { code: misnamed(ref, s.entryPoint) } }, { call: 'run_tests', args: { code: ref } }, { say: fence(ref) }];
    default: return [{ call: 'run_tests', args: { code: ref } }, { say: fence(ref) }];
  }
}

function repoSteps(task: Task, path: string, noise: string | null): Step[] {
  const s = repoSpecOf(task);
  const { path: file, from, to } = s.fix;
  const fix: Step = { call: 'edit', args: { path: file, old: from, new: to } };
  const fn = /`(\w+)\(/.exec(task.instruction)?.[1] ?? file.replace(/\.py$/, '').split('/').pop()!;
  if (noise === 'submit_unfixed') return [{ call: 'read_file', args: { path: file } }, { call: 'submit', args: {} }];
  if (noise === 'wrong_fix') {
    // a change that leaves the bug in place: a comment appended to the buggy line
    const line = from.split('\n').find((l) => l.trim()) ?? from;
    return [{ call: 'read_file', args: { path: file } }, { call: 'edit', args: { path: file, old: line, new: `${line}  # checked` } }, { call: 'submit', args: {} }];
  }
  switch (path) {
    case 'test_first': return [{ call: 'run_tests', args: {} }, { call: 'read_file', args: { path: file } }, fix, { call: 'run_tests', args: {} }, { call: 'submit', args: {} }];
    case 'search_first': return [{ call: 'search', args: { query: fn } }, { call: 'read_file', args: { path: file } }, fix, { call: 'submit', args: {} }];
    case 'recover': return [
      { call: 'read_file', args: { path: file } }, { call: 'edit', args: { path: file, old: `${from}\n#`, new: to } },
      { call: 'read_file', args: { path: file } }, fix, { call: 'run_tests', args: {} }, { call: 'submit', args: {} }];
    default: return [{ call: 'list_files', args: {} }, { call: 'read_file', args: { path: file } }, fix, { call: 'run_tests', args: {} }, { call: 'submit', args: {} }];
  }
}

function message(step: Step, turn: number): Message {
  const base = { role: 'assistant' as const, tool_call_id: null, name: null };
  if ('say' in step) return { ...base, content: step.say, tool_calls: [] };
  return { ...base, content: '', tool_calls: [{ id: `call_${turn}`, name: step.call, arguments: step.args, raw: JSON.stringify(step.args) }] };
}

export const hasExecTeacher = (world: string): boolean => world === 'code' || world === 'repo';

/** The path and noise of one trajectory: path = seed mod the paths; noise with probability `rate` (seeded). */
export function execPlan(task: Task, seed: number, rate: number): { path: string; noise: string | null } {
  const paths: readonly string[] = task.world === 'code' ? CODE_PATHS : REPO_PATHS;
  const kinds: readonly string[] = task.world === 'code' ? CODE_NOISE : REPO_NOISE;
  const rng = Rng.derive('exec-noise', task.id, seed);
  const path = paths[((seed % paths.length) + paths.length) % paths.length];
  return { path, noise: rate > 0 && rng.chance(rate) ? rng.pick(kinds) : null };
}

export function execTeacher(task: Task, seed: number, rate = 0): ChatPolicy & { noise: string | null; path: string } {
  const { path, noise } = execPlan(task, seed, rate);
  const steps = task.world === 'code' ? codeSteps(task, path, noise) : repoSteps(task, path, noise);
  return {
    name: noise ? `scripted+${noise}` : `scripted/${path}`, noise, path,
    async respond(req: ChatRequest): Promise<Message> {
      const turn = req.messages.filter((m) => m.role === 'assistant').length;
      return message(steps[Math.min(turn, steps.length - 1)], turn);
    },
  };
}
