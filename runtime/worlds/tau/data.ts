import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ToolSpec } from '../../../schemas/tool.ts';
import { loadTables, type Tables } from './db.ts';
import { isObj, parsePyJson, type Py, type PyObj } from './pyvalue.ts';

/** Everything a τ-bench domain needs, read once per process from data/tau-bench/<domain>/. */
export type TauDomain = 'retail' | 'airline';
export const TAU_SPLITS: Record<TauDomain, string[]> = { retail: ['test', 'train', 'dev'], airline: ['test'] };
const TABLES: Record<TauDomain, string[]> = { retail: ['orders', 'products', 'users'], airline: ['flights', 'reservations', 'users'] };

export const TAU_DIR = new URL('../../../data/tau-bench/', import.meta.url).pathname;

export interface TauAction { name: string; kwargs: PyObj }
export interface TauTask { index: number; split: string; userId: string; instruction: string; actions: TauAction[]; outputs: string[]; annotator: string }
export interface TauDomainData {
  domain: TauDomain;
  tables: Tables;
  policy: string;
  toolSpecs: ToolSpec[];
  tasks(split: string): TauTask[];
}

const RawTask = z.object({
  annotator: z.string().optional(), user_id: z.string(), instruction: z.string(),
  actions: z.array(z.object({ name: z.string(), kwargs: z.record(z.string(), z.unknown()) })), outputs: z.array(z.string()),
});

const cache = new Map<string, TauDomainData>();

export function loadTauDomain(domain: TauDomain, dir = join(TAU_DIR, domain)): TauDomainData {
  const hit = cache.get(dir);
  if (hit) return hit;
  const toolsFile = join(dir, 'tools.json');
  const tools = JSON.parse(readFileSync(toolsFile, 'utf8')) as unknown[];
  const toolSpecs = tools.map((t, i) => {
    const r = ToolSpec.safeParse(t);
    if (!r.success) throw new Error(`${toolsFile}: tool ${i}: ${r.error.issues[0].message} at ${r.error.issues[0].path.join('.')}`);
    return r.data;
  });
  const splits = new Map<string, TauTask[]>();
  const data: TauDomainData = {
    domain, tables: loadTables(dir, TABLES[domain]), policy: readFileSync(join(dir, 'wiki.md'), 'utf8'), toolSpecs,
    tasks(split) {
      if (!TAU_SPLITS[domain].includes(split)) throw new Error(`τ-bench ${domain} has no split "${split}" (have: ${TAU_SPLITS[domain].join(', ')})`);
      if (!splits.has(split)) splits.set(split, readTasks(join(dir, `tasks_${split}.json`), split));
      return splits.get(split)!;
    },
  };
  cache.set(dir, data);
  return data;
}

/** Tasks keep Python number types (parsed with parsePyJson) so replayed kwargs are exactly upstream's. */
export function readTasks(file: string, split: string): TauTask[] {
  const raw = parsePyJson(readFileSync(file, 'utf8'), file);
  if (!Array.isArray(raw)) throw new Error(`${file}: expected a JSON array of tasks`);
  return raw.map((t, index) => {
    const r = RawTask.safeParse(toPlain(t));
    if (!r.success) throw new Error(`${file}: task ${index}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const obj = t as PyObj;
    const actions = (obj.actions as PyObj[]).map((a) => ({ name: a.name as string, kwargs: a.kwargs as PyObj }));
    return { index, split, userId: r.data.user_id, instruction: r.data.instruction, actions, outputs: r.data.outputs, annotator: r.data.annotator ?? '' };
  });
}

/** A Py value as plain JSON-safe JS (integral floats become numbers): for zod checks and Task records. */
export function toPlain(v: Py): unknown {
  if (Array.isArray(v)) return v.map(toPlain);
  if (isObj(v)) return Object.fromEntries(Object.keys(v).map((k) => [k, toPlain(v[k])]));
  return typeof v === 'object' && v !== null ? (v as { value: number }).value : v;
}
