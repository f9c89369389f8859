import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { byCodePoint, deepClone, hashableRepr, isObj, parsePyJson, pyKeys, strRepr, pyTuple, type Py, type PyObj } from './pyvalue.ts';

/*
 * A τ-bench database: named tables of top-level records (orders, users, …), loaded once from the JSON files and
 * shared by every episode. An episode works copy-on-write: `mut()` clones a record the first time the episode
 * writes it, so a reset is O(number of records) pointer copies and the hash of an untouched record is computed
 * once per process (the reference re-hashes ~5 MB per episode).
 */
export type Tables = Record<string, Map<string, Py>>;

export function loadTables(dir: string, names: string[]): Tables {
  const tables: Tables = {};
  for (const name of names) {
    const file = `${dir}/${name}.json`;
    const data = parsePyJson(readFileSync(file, 'utf8'), file);
    if (!isObj(data)) throw new Error(`${file}: expected a JSON object keyed by id`);
    tables[name] = new Map(pyKeys(data).map((k) => [k, data[k]]));
  }
  return tables;
}

const sharedReprCache = new WeakMap<object, string>();

export class TauDb {
  private tables: Tables = {};
  private owned: Record<string, Set<string>> = {};

  constructor(private readonly initial: Tables) { this.reset(); }

  reset(): void {
    this.tables = Object.fromEntries(Object.entries(this.initial).map(([n, m]) => [n, new Map(m)]));
    this.owned = Object.fromEntries(Object.keys(this.initial).map((n) => [n, new Set<string>()]));
  }

  table(name: string): Map<string, Py> { return this.tables[name]; }
  get(table: string, key: string): PyObj | undefined { return this.tables[table].get(key) as PyObj | undefined; }
  has(table: string, key: string): boolean { return this.tables[table].has(key); }

  /** The record, writable: cloned on the episode's first write. */
  mut(table: string, key: string): PyObj {
    const rec = this.tables[table].get(key);
    if (rec === undefined) throw new Error(`'${key}'`); // Python KeyError text
    if (!this.owned[table].has(key)) {
      this.tables[table].set(key, deepClone(rec));
      this.owned[table].add(key);
    }
    return this.tables[table].get(key) as PyObj;
  }

  /** Adds a new record (owned by the episode). */
  insert(table: string, key: string, rec: PyObj): void {
    this.tables[table].set(key, rec);
    this.owned[table].add(key);
  }

  /** Records that differ from the initial files (by identity: only written records are clones). */
  changed(): Record<string, Record<string, Py>> {
    const out: Record<string, Record<string, Py>> = {};
    for (const [name, keys] of Object.entries(this.owned)) {
      for (const k of keys) (out[name] ??= {})[k] = this.tables[name].get(k)!;
    }
    return out;
  }

  /** τ-bench's data hash: sha256(str(to_hashable({table: {id: record}}))), streamed table by table. */
  hash(): string {
    const h = createHash('sha256');
    const names = Object.keys(this.tables).sort(byCodePoint);
    h.update('(');
    names.forEach((name, i) => {
      h.update(`${i ? ', ' : ''}(${strRepr(name)}, `);
      h.update(this.owned[name].size === 0 ? this.initialTableText(name) : this.tableText(name), 'utf8');
      h.update(')');
    });
    h.update(names.length === 1 ? ',)' : ')');
    return h.digest('hex');
  }

  private tableText(name: string): string {
    const t = this.tables[name], owned = this.owned[name];
    const keys = owned.size === 0 || [...owned].every((k) => this.initial[name].has(k)) ? sortedKeys(this.initial[name]) : [...t.keys()].sort(byCodePoint);
    return pyTuple(keys.map((k) => `(${strRepr(k)}, ${hashableRepr(t.get(k)!, owned.has(k) ? undefined : sharedReprCache)})`));
  }

  /** An untouched table's text is the same in every episode: computed once per process. */
  private initialTableText(name: string): string {
    const m = this.initial[name];
    let text = tableTextCache.get(m);
    if (text === undefined) tableTextCache.set(m, (text = this.tableText(name)));
    return text;
  }
}

const tableTextCache = new WeakMap<Map<string, Py>, string>();
const sortedKeyCache = new WeakMap<Map<string, Py>, string[]>();
function sortedKeys(m: Map<string, Py>): string[] {
  let keys = sortedKeyCache.get(m);
  if (!keys) sortedKeyCache.set(m, (keys = [...m.keys()].sort(byCodePoint)));
  return keys;
}
