import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Message } from '../../../schemas/message.ts';
import type { ToolSpec } from '../../../schemas/tool.ts';
import { isObj, parsePyJson, pyKeys, type Py, type PyObj } from '../../worlds/tau/pyvalue.ts';
import { toolName, type FuncDoc } from './checker.ts';

/** BFCL v4 single-turn categories we evaluate, with their data file stems (simple = simple_python upstream). */
export const BFCL_CATEGORIES = ['simple', 'multiple', 'parallel', 'parallel_multiple', 'irrelevance', 'live_simple', 'live_multiple',
  'live_parallel', 'live_parallel_multiple', 'live_irrelevance', 'live_relevance'] as const;
export type BfclCategory = (typeof BFCL_CATEGORIES)[number];
const STEM: Record<BfclCategory, string> = Object.fromEntries(BFCL_CATEGORIES.map((c) => [c, c === 'simple' ? 'simple_python' : c])) as Record<BfclCategory, string>;

export const BFCL_DIR = new URL('../../../data/bfcl/', import.meta.url).pathname;

export interface BfclEntry {
  id: string;
  category: BfclCategory;
  /** The single turn's messages (system/user). */
  messages: Message[];
  functions: FuncDoc[];
  /** ground_truth: [{func_name: {param: [acceptable values]}}]; absent for (ir)relevance categories. */
  answers: PyObj[] | null;
}

export const isRelevanceCategory = (c: string) => c.includes('irrelevance') || c === 'live_relevance';

/** Reads a BFCL JSON Lines file keeping Python number types; a bad line names file and line. */
function readLines(file: string): PyObj[] {
  const out: PyObj[] = [];
  readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: Py;
    try { v = parsePyJson(line, `${file}:${i + 1}`); } catch (e) { throw new Error(`${(e as Error).message} (malformed JSON row)`); }
    if (!isObj(v) || typeof v.id !== 'string') throw new Error(`${file}:${i + 1}: expected an object with a string "id"`);
    out.push(v);
  });
  return out;
}

export function loadBfcl(category: BfclCategory, dir = BFCL_DIR): BfclEntry[] {
  const file = join(dir, `BFCL_v4_${STEM[category]}.json`);
  const rows = readLines(file);
  const paFile = join(dir, 'possible_answer', `BFCL_v4_${STEM[category]}.json`);
  const answers = isRelevanceCategory(category) ? null : existsSync(paFile) ? readLines(paFile) : null;
  if (!isRelevanceCategory(category) && !answers) throw new Error(`${paFile}: possible answers for ${category} are missing`);
  return rows.map((row, i) => {
    const where = `${file}:${i + 1}`;
    const turns = row.question;
    if (!Array.isArray(turns) || !Array.isArray(turns[0])) throw new Error(`${where}: "question" must be a list of turns`);
    const messages = (turns[0] as PyObj[]).map((m) => {
      if (!isObj(m) || typeof m.content !== 'string' || !['user', 'system', 'assistant'].includes(m.role as string)) throw new Error(`${where}: bad message in "question"`);
      return { role: m.role as Message['role'], content: m.content, tool_calls: [], tool_call_id: null, name: null };
    });
    const functions = row.function;
    if (!Array.isArray(functions) || !functions.every((f) => isObj(f) && typeof f.name === 'string' && isObj(f.parameters))) {
      throw new Error(`${where}: "function" must be a list of {name, parameters} docs`);
    }
    let gt: PyObj[] | null = null;
    if (answers) {
      const a = answers[i];
      if (!a || a.id !== row.id) throw new Error(`${paFile}:${i + 1}: id ${JSON.stringify(a?.id)} does not match ${where} id ${JSON.stringify(row.id)}`);
      if (!Array.isArray(a.ground_truth) || !a.ground_truth.every((c) => isObj(c) && pyKeys(c).length === 1)) throw new Error(`${paFile}:${i + 1}: "ground_truth" must be a list of {name: params}`);
      gt = a.ground_truth as PyObj[];
    }
    return { id: row.id as string, category, messages, functions: functions as FuncDoc[], answers: gt };
  });
}

/** BFCL type names → JSON Schema (the harness's GORILLA_TO_OPENAPI mapping), applied recursively. */
const OPENAPI: Record<string, string> = { dict: 'object', float: 'number', tuple: 'array', any: 'string' };
function toSchema(v: Py): Py {
  if (Array.isArray(v)) return v.map(toSchema);
  if (!isObj(v)) return v;
  const out: PyObj = {};
  for (const k of pyKeys(v)) {
    if (k === 'type' && typeof v[k] === 'string') out[k] = OPENAPI[v[k] as string] ?? v[k];
    else if (k === 'properties' && isObj(v[k])) out[k] = Object.fromEntries(pyKeys(v[k] as PyObj).map((p) => [p, toSchema((v[k] as PyObj)[p])]));
    else out[k] = toSchema(v[k]);
  }
  return out;
}

/** The entry's functions as OpenAI tools (dots in names become underscores, as BFCL does for such APIs). */
export function bfclTools(entry: BfclEntry): ToolSpec[] {
  return entry.functions.map((f) => ({
    type: 'function' as const,
    function: { name: toolName(f.name), description: String(f.description ?? ''), parameters: plain(toSchema(f.parameters as Py)) as Record<string, unknown> },
  }));
}

/** Py → plain JSON values for tool specs sent to an endpoint. */
function plain(v: Py): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (isObj(v)) return Object.fromEntries(pyKeys(v).map((k) => [k, plain(v[k])]));
  return typeof v === 'object' && v !== null ? (v as { value: number }).value : v;
}
