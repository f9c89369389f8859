import { readFileSync, readdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { z } from 'zod';

/** One code problem. `files` are the test assets the harness needs next to the candidate program. */
export const CodeTask = z.object({
  id: z.string(),
  benchmark: z.enum(['humaneval', 'mbpp', 'quixbugs']),
  /** What the model is shown. */
  prompt: z.string(),
  entryPoint: z.string(),
  /** Reference solution in the same form a model's answer takes (HumanEval: the body continuing the prompt). */
  reference: z.string(),
  /** QuixBugs only: the program with its one defective line. */
  buggy: z.string().optional(),
  test: z.string(),
  testImports: z.array(z.string()).default([]),
  files: z.record(z.string(), z.string()).default({}),
});
export type CodeTask = z.infer<typeof CodeTask>;

export const DATA_DIR = new URL('../../../data/', import.meta.url).pathname;

/** Parses JSON Lines, naming file and line on a malformed row. */
export function readJsonLines(file: string, text = readFileSync(file, 'utf8')): unknown[] {
  const rows: unknown[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    try { rows.push(JSON.parse(line)); } catch (e) { throw new Error(`${file}:${i + 1}: malformed JSON row (${(e as Error).message})`); }
  });
  return rows;
}

function parseRow<S extends z.ZodType>(schema: S, row: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(row);
  if (!r.success) throw new Error(`${where}: ${r.error.issues.map((i) => `${i.path.join('.') || '(row)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

const HumanEvalRow = z.object({ task_id: z.string(), prompt: z.string(), entry_point: z.string(), canonical_solution: z.string(), test: z.string() });

export function loadHumanEval(file = join(DATA_DIR, 'humaneval/HumanEval.jsonl.gz')): CodeTask[] {
  const text = file.endsWith('.gz') ? gunzipSync(readFileSync(file)).toString('utf8') : readFileSync(file, 'utf8');
  return readJsonLines(file, text).map((row, i) => {
    const r = parseRow(HumanEvalRow, row, `${file}: row ${i + 1}`);
    return CodeTask.parse({ id: r.task_id, benchmark: 'humaneval', prompt: r.prompt, entryPoint: r.entry_point, reference: r.canonical_solution, test: r.test });
  });
}

const MbppRow = z.object({ task_id: z.number().int(), prompt: z.string(), code: z.string(), test_imports: z.array(z.string()), test_list: z.array(z.string()).min(1) });

/** MBPP sanitized (427). The model sees the task text and the asserts (the paper's prompt format). */
export function loadMbpp(file = join(DATA_DIR, 'mbpp/sanitized-mbpp.json')): CodeTask[] {
  let rows: unknown;
  try { rows = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { throw new Error(`${file}: malformed JSON (${(e as Error).message})`); }
  if (!Array.isArray(rows)) throw new Error(`${file}: expected a JSON array of problems`);
  return rows.map((row, i) => {
    const r = parseRow(MbppRow, row, `${file}: element ${i}`);
    const entryPoint = /def\s+(\w+)\s*\(/.exec(r.code)?.[1] ?? '';
    const prompt = `You are an expert Python programmer, and here is your task: ${r.prompt} Your code should pass these tests:\n\n${r.test_list.join('\n')}\n`;
    return CodeTask.parse({ id: `mbpp/${r.task_id}`, benchmark: 'mbpp', prompt, entryPoint, reference: r.code, test: r.test_list.join('\n'), testImports: r.test_imports });
  });
}

/** QuixBugs Python: 40 programs; the model gets the buggy program and must return the repaired one. */
export function loadQuixBugs(dir = join(DATA_DIR, 'quixbugs')): CodeTask[] {
  const names = readdirSync(join(dir, 'python_testcases')).filter((f) => /^test_\w+\.py$/.test(f)).map((f) => f.slice(5, -3)).sort();
  const shared = {
    'python_programs/node.py': readFileSync(join(dir, 'python_programs/node.py'), 'utf8'),
    'python_testcases/node.py': readFileSync(join(dir, 'python_testcases/node.py'), 'utf8'),
    'python_testcases/load_testdata.py': readFileSync(join(dir, 'python_testcases/load_testdata.py'), 'utf8'),
  };
  return names.map((name) => {
    const buggy = readFileSync(join(dir, 'python_programs', `${name}.py`), 'utf8');
    const files: Record<string, string> = { ...shared };
    try { files[`json_testcases/${name}.json`] = readFileSync(join(dir, 'json_testcases', `${name}.json`), 'utf8'); } catch { /* graph programs: tests inline */ }
    const prompt = `The following Python program has a bug on exactly one line. Return the whole corrected program.\n\n\`\`\`python\n${buggy}\`\`\`\n`;
    return CodeTask.parse({
      id: `quixbugs/${name}`, benchmark: 'quixbugs', prompt, entryPoint: name, buggy,
      reference: readFileSync(join(dir, 'correct_python_programs', `${name}.py`), 'utf8'),
      test: readFileSync(join(dir, 'python_testcases', `test_${name}.py`), 'utf8'), files,
    });
  });
}
