import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Task } from '../../../schemas/task.ts';
import { assertOf, functionTask, referenceOf, VISIBLE } from './generator.ts';

/*
 * What one code task is: a function to write, visible asserts shown to the agent (and run by run_tests), hidden
 * asserts that score the final answer, a reference solution. Sources: the seeded generator (generator.ts) and
 * MBPP's train, validation and prompt splits. MBPP's test split (task ids 11–510) and HumanEval are evaluation
 * only: `mbppTrainingRows` never returns them, and a task whose source names one is refused when it is read back.
 */
export interface CodeSpec {
  /** "gen/<index>/<input seed>" or "mbpp/<task_id>" (the task's source: tag). */
  source: string;
  entryPoint: string;
  description: string;
  visible: string[];
  hidden: string[];
  /** Imports the tests need (MBPP's test_imports), run before the tests in the harness and in the candidate. */
  imports: string[];
  reference: string;
  difficulty: number;
}

export const DATA_DIR = new URL('../../../data/', import.meta.url).pathname;
const MBPP_FILE = join(DATA_DIR, 'mbpp/sanitized-mbpp.json');

/** MBPP's splits by task id (upstream README): 1–10 prompt, 11–510 test, 511–600 validation, 601–974 train. */
export function mbppSplit(taskId: number): 'prompt' | 'test' | 'validation' | 'train' {
  if (taskId <= 10) return 'prompt';
  if (taskId <= 510) return 'test';
  return taskId <= 600 ? 'validation' : 'train';
}
export const isEvalOnlySource = (source: string): boolean =>
  /^humaneval\b/i.test(source) || (/^mbpp\/\d+$/.test(source) && mbppSplit(Number(source.slice(5))) === 'test');

const MbppRow = z.object({ task_id: z.number().int(), prompt: z.string(), code: z.string(), test_imports: z.array(z.string()), test_list: z.array(z.string()).min(2) });
type MbppRow = z.infer<typeof MbppRow>;

let mbppCache: MbppRow[] | undefined;
/** Sanitized MBPP rows of the training splits (prompt, validation, train), in task-id order. */
export function mbppTrainingRows(file = MBPP_FILE): MbppRow[] {
  if (file === MBPP_FILE && mbppCache) return mbppCache;
  let raw: unknown;
  try { raw = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { throw new Error(`${file}: cannot read MBPP (${(e as Error).message})`); }
  if (!Array.isArray(raw)) throw new Error(`${file}: expected a JSON array of MBPP problems`);
  const rows = raw.map((row, i) => {
    const r = MbppRow.safeParse(row);
    if (!r.success) throw new Error(`${file}: element ${i}: ${r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
    return r.data;
  }).filter((r) => mbppSplit(r.task_id) !== 'test').sort((a, b) => a.task_id - b.task_id);
  if (file === MBPP_FILE) mbppCache = rows;
  return rows;
}

function mbppSpec(row: MbppRow): CodeSpec {
  const entryPoint = /def\s+(\w+)\s*\(/.exec(row.code)?.[1] ?? '';
  return {
    source: `mbpp/${row.task_id}`, entryPoint, description: row.prompt, visible: row.test_list.slice(0, 1), hidden: row.test_list.slice(1),
    imports: row.test_imports, reference: row.code.replace(/\r\n/g, '\n'), difficulty: Math.min(3, Math.max(1, row.code.split('\n').filter((l) => l.trim()).length - 1)),
  };
}

export function generatedSpec(index: number, seed: number): CodeSpec {
  const t = functionTask(index, seed);
  const asserts = t.inputs.map((a, i) => assertOf(t.name, a, t.expected[i]));
  return {
    source: `gen/${index}/${seed}`, entryPoint: t.name, description: `Write a Python function \`${t.name}(${t.params.join(', ')})\` that ${t.description}.`,
    visible: asserts.slice(0, VISIBLE), hidden: asserts.slice(VISIBLE), imports: [], reference: referenceOf(t), difficulty: t.difficulty,
  };
}

/** The instruction the agent sees: the description and the visible asserts, never the hidden ones. */
export function instructionOf(s: CodeSpec): string {
  return `${s.description}\nIt must pass these tests:\n${s.visible.join('\n')}\n` +
    'You can run code with run_python and the tests above with run_tests. Reply with the final function in a ```python block.';
}

/** The spec a task was made from: its `source:` tag names it, the task seed draws the generated inputs. */
export function specOf(task: Pick<Task, 'id' | 'seed' | 'tags'>): CodeSpec {
  const tag = task.tags.find((t) => t.startsWith('source:'));
  if (!tag) throw new Error(`code task ${task.id}: no source: tag (made by another version of the code world?)`);
  const source = tag.slice(7);
  if (isEvalOnlySource(source)) throw new Error(`code task ${task.id}: source ${source} is evaluation-only (MBPP test split / HumanEval) and never a training task`);
  const gen = /^gen\/(\d+)\/(\d+)$/.exec(source);
  if (gen) return { ...generatedSpec(Number(gen[1]), Number(gen[2])), source };
  const m = /^mbpp\/(\d+)$/.exec(source);
  const row = m && mbppTrainingRows().find((r) => r.task_id === Number(m[1]));
  if (!row) throw new Error(`code task ${task.id}: unknown source ${source}`);
  return mbppSpec(row);
}

export { mbppSpec };
