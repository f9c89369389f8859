import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { dag, validateDag } from '../../runtime/engine/dag.ts';
import { operator, table } from '../../runtime/engine/operator.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { computeKeys } from '../../runtime/engine/keys.ts';
import { DagValidationError } from '../../runtime/engine/dag.ts';
import { Ledger } from '../../storage/ledger.ts';
import { TableReader } from '../../storage/table.ts';
import type { Reporter } from '../../runtime/engine/progress.ts';
import { double, numbers, tempStore, Text } from './fixtures.ts';

let store: ReturnType<typeof tempStore>;
beforeEach(() => { store = tempStore(); });
afterEach(() => store.cleanup());

const nested = operator({
  name: 'test-nested-params', version: 1,
  params: z.object({ sampling: z.object({ temperature: z.number().default(1), top_p: z.number().default(1) }).default({ temperature: 1, top_p: 1 }), tags: z.array(z.object({ name: z.string() })).default([]), extra: z.object({}).loose().default({}) }),
  inputs: {}, output: table(Text, 'Text'),
  async run({ out }) { await out.write([{ s: 'x' }]); },
});

describe('operator params are strict', () => {
  it('a misspelt key is a definition error naming the node, the key and the closest known key', () => {
    const d = dag('p', (b) => { b.node('gen', numbers, { nn: 3 } as never); });
    const problems = validateDag(d);
    expect(problems.join('\n')).toContain("node 'gen' (test-numbers): unknown param 'nn' — did you mean 'n'? (test-numbers takes: n, scale)");
    // the node's own required param is still reported
    expect(problems.join('\n')).toMatch(/param n: .*expected number/);
  });

  it('nested objects and arrays of objects are checked too; a loose object takes any key', () => {
    const d = dag('p', (b) => { b.node('gen', nested, { sampling: { temprature: 0.7 }, tags: [{ name: 'a' }, { nme: 'b' }], extra: { anything: 1 } } as never); });
    const p = validateDag(d).join('\n');
    expect(p).toContain("unknown param 'sampling.temprature' — did you mean 'sampling.temperature'?");
    expect(p).toContain("unknown param 'tags.1.nme' — did you mean 'tags.1.name'?");
    expect(p).not.toContain('anything');
  });

  it('a DAG with an unknown param does not run (before today it ran with the default and committed)', async () => {
    const d = dag('p', (b) => { b.node('gen', numbers, { n: 2, scael: 3 } as never); });
    await expect(runDag(d, { storeDir: store.dir })).rejects.toThrow(DagValidationError);
    await expect(runDag(d, { storeDir: store.dir })).rejects.toThrow(/unknown param 'scael' — did you mean 'scale'\?/);
    expect(existsSync(join(store.dir, 'artifacts')) ? readdirSync(join(store.dir, 'artifacts')) : []).toEqual([]);
  });

  it('valid params keep their keys (strictness changes no cache key)', () => {
    const d = dag('p', (b) => { b.node('gen', numbers, { n: 2, scale: 3 }); });
    expect(computeKeys(d).get('gen')!.key).toBe(computeKeys(dag('p', (b) => { b.node('gen', numbers, { scale: 3, n: 2 }); })).get('gen')!.key);
    expect(validateDag(d)).toEqual([]);
  });
});

describe('node ids that would collide with SQL views are rejected at definition time', () => {
  it.each([
    ['runs', /'runs' is the name of a ledger view/],
    ['metrics', /'metrics' is the name of a ledger view/],
    ['artifacts', /reserved: runs, executions, artifacts, lineage, metrics/],
    ['x_all', /ids ending in '_all' are reserved: node 'x' gets a view 'x_all'/],
    ['smoke__episodes', /may not contain '__'.*'<dag>__<node>'/],
  ])('%s', async (id, why) => {
    const d = dag('v', (b) => { b.node(id, numbers, { n: 1 }); });
    expect(validateDag(d).join('\n')).toMatch(why);
    await expect(runDag(d, { storeDir: store.dir })).rejects.toThrow(DagValidationError);
  });
});

describe('lone surrogates', () => {
  it('in a param: a definition error up front, not a failure at ledger commit after the folder was published', async () => {
    const d = dag('s', (b) => { b.node('gen', nested, { tags: [{ name: 'ok' }, { name: 'bad \ud83d here' }] }); });
    expect(validateDag(d).join('\n')).toContain("node 'gen' (test-nested-params): param tags[1].name holds a lone UTF-16 surrogate at index 4");
    await expect(runDag(d, { storeDir: store.dir })).rejects.toThrow(DagValidationError);
    expect(existsSync(join(store.dir, 'artifacts')) ? readdirSync(join(store.dir, 'artifacts')) : []).toEqual([]);
  });

  it('in a row: stored as U+FFFD, and the run says so (a log line and a rows_with_lone_surrogates metric)', async () => {
    const emits = operator({
      name: 'test-emits-surrogate', version: 1, params: z.object({}), inputs: {}, output: table(Text, 'Text'),
      async run({ out }) { await out.write([{ s: 'fine' }, { s: 'half \udc00 pair' }, { s: 'ok 😀' }]); },
    });
    const logs: string[] = [];
    const reporter: Reporter = { nodeStart() {}, nodeProgress() {}, nodeEnd() {}, log(id, m) { logs.push(`${id}: ${m}`); }, close() {} };
    const r = await runDag(dag('s', (b) => { b.node('rows', emits); b.node('after', double, {}, { xs: b.node('n', numbers, { n: 1 }) }); }), { storeDir: store.dir, reporter });
    expect(r.ok).toBe(true);
    expect(logs.join('\n')).toContain('rows: 1 output row(s) held text with a lone UTF-16 surrogate (first: row 1 field s); each was stored as U+FFFD');
    const key = r.nodes.get('rows')!.key;
    const rows = await new TableReader('rows', key, [join(store.dir, 'artifacts', key, 'data.parquet')], Text).all();
    expect(rows.map((x) => (x as { s: string }).s)).toEqual(['fine', 'half \ufffd pair', 'ok 😀']);
    const l = await Ledger.openReadOnly(join(store.dir, 'ledger.duckdb'));
    try {
      expect(await l.all(`SELECT node_id, value FROM metrics WHERE name = 'rows_with_lone_surrogates'`)).toEqual([{ node_id: 'rows', value: 1 }]);
    } finally { await l.close(); }
    expect(existsSync(join(store.dir, 'artifacts', key))).toBe(true);
  });
});
