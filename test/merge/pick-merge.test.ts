/* pick-merge: real merges (TIES, task arithmetic, DARE) of tiny models, scored by a held-out summary; the best is kept and every candidate recorded. */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dag } from '../../runtime/engine/dag.ts';
import { model, operator, table } from '../../runtime/engine/operator.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { nodePython } from '../fixtures/python.ts';
import { merge } from '../../operators/merge.ts';
import { pickMerge, rankCandidates } from '../../operators/pick-merge.ts';
import { EvalRow } from '../../schemas/eval.ts';
import { openSqlSession, runReadOnly } from '../../storage/sql.ts';
import { tempStore } from '../engine/fixtures.ts';

const row = (model: string, world: string, success: number, mean_reward = success): EvalRow => ({
  model, world, split: 'heldout', tasks: 20, samples_per_task: 1, temperature: 0, success, pass_hat_k: { 1: success }, mean_reward,
  mean_turns: 2, mean_completion_tokens: 30, finish_reasons: { stop: 20 }, errors: {},
});

describe('rankCandidates', () => {
  it('ranks by mean success over worlds (each domain weighs the same), then mean reward, then label order', () => {
    const rows = [
      row('ties', 'retail', 0.9), row('ties', 'code', 0.1), // mean 0.5
      row('dare', 'retail', 0.6), row('dare', 'code', 0.5), // mean 0.55: best although worse on retail
      row('ta', 'retail', 0.7, 0.7), row('ta', 'code', 0.3, 0.9), // mean 0.5, higher reward than ties
    ];
    expect(rankCandidates(['ties', 'ta', 'dare'], rows, 'x').map((c) => c.label)).toEqual(['dare', 'ta', 'ties']);
    const tie = [row('a', 'w', 0.5), row('b', 'w', 0.5)];
    expect(rankCandidates(['b', 'a'], tie, 'x').map((c) => c.label)).toEqual(['b', 'a']);
    expect(rankCandidates(['ties', 'ta', 'dare'], rows, 'x')[0]).toMatchObject({ label: 'dare', score: 0.55, worlds: { retail: { success: 0.6 }, code: { success: 0.5 } } });
  });

  it('refuses a candidate with no row, or candidates scored on different worlds, naming them', () => {
    expect(() => rankCandidates(['ties', 'dare'], [row('ties', 'w', 1)], 'node merge_pick')).toThrow(/node merge_pick\) has no row for candidate 'dare' \(it has: ties\)/);
    expect(() => rankCandidates(['a', 'b'], [row('a', 'w', 1), row('b', 'v', 1)], 'n')).toThrow(/different worlds \(w \| v\)/);
  });
});

let fixtureDir: string;
const tinyLlama = operator({
  name: 'test-pick-tiny-llama', version: 1, params: z.object({ which: z.string() }), inputs: {}, output: model(),
  async run({ params, out }) { cpSync(join(fixtureDir, params.which), out.dir, { recursive: true }); },
});
/** Stands in for evaluate + eval-summary: the held-out scores the candidates would get. */
const summary = operator({
  name: 'test-pick-summary', version: 1, params: z.object({ rows: z.array(z.object({ model: z.string(), world: z.string(), success: z.number() })) }),
  inputs: {}, output: table(EvalRow, 'EvalRow'),
  async run({ params, out }) { await out.write(params.rows.map((r) => row(r.model, r.world, r.success))); },
});

const METHODS = ['ties', 'task_arithmetic', 'dare'] as const;
const pickDag = (scores: Record<string, [number, number]>) => dag('pick-test', (d) => {
  const base = d.node('base', tinyLlama, { which: 'm0' });
  const experts = [1, 2].map((s) => d.node(`e${s}`, tinyLlama, { which: `m${s}` }));
  const params = { ties: { method: 'ties', density: 0.5 }, task_arithmetic: { method: 'task_arithmetic' }, dare: { method: 'dare', dropRate: 0.5 } } as const;
  const candidates = METHODS.map((m) => d.node(`merge_${m}`, merge, params[m], { base, experts }));
  const rows = METHODS.flatMap((m) => [{ model: m, world: 'retail', success: scores[m][0] }, { model: m, world: 'code', success: scores[m][1] }]);
  d.node('merged', pickMerge, { labels: [...METHODS] }, { summary: d.node('merge_pick', summary, { rows }), candidates });
});

describe('pick-merge in a DAG, on real merges of tiny models', () => {
  let store: ReturnType<typeof tempStore>;
  beforeAll(async () => {
    store = tempStore();
    fixtureDir = mkdtempSync(join(tmpdir(), 'af-pick-fixtures-'));
    await nodePython(['-c', [
      'import sys', 'sys.path.insert(0, "bench")', 'from merge_fixtures import llama_tensors, write_model',
      'b = llama_tensors(16, 2, 32, 64, 0)', 'write_model(sys.argv[1] + "/m0", b)',
      'for s in (1, 2): write_model(sys.argv[1] + f"/m{s}", llama_tensors(16, 2, 32, 64, s, base=b))',
    ].join('\n'), fixtureDir]);
  }, 120_000);
  afterAll(() => { store.cleanup(); rmSync(fixtureDir, { recursive: true, force: true }); });

  const artifact = (r: Awaited<ReturnType<typeof runDag>>, id: string) => join(store.dir, 'artifacts', r.nodes.get(id)!.key);
  const weights = (dir: string) => readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.safetensors'))!));

  it.each([
    { best: 'task_arithmetic', scores: { ties: [0.8, 0.2], task_arithmetic: [0.7, 0.4], dare: [0.5, 0.1] } },
    { best: 'dare', scores: { ties: [0.8, 0.2], task_arithmetic: [0.7, 0.2], dare: [0.9, 0.3] } },
  ] as const)('keeps $best, the best mean held-out success: its weights and merge record, all candidates in pick.json and the metrics', async ({ best, scores }) => {
    const r = await runDag(pickDag(scores as unknown as Record<string, [number, number]>), { storeDir: store.dir });
    expect(r.ok, r.nodes.get('merged')?.error).toBe(true);
    const out = artifact(r, 'merged');
    expect(weights(out).equals(weights(artifact(r, `merge_${best}`)))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'merge.json'), 'utf8')).method).toBe(best);
    const pick = JSON.parse(readFileSync(join(out, 'pick.json'), 'utf8'));
    expect(pick.chosen).toBe(best);
    expect(pick.from.key).toBe(r.nodes.get(`merge_${best}`)!.key);
    expect(pick.candidates.map((c: { label: string }) => c.label).sort()).toEqual([...METHODS].sort());
    const s = await openSqlSession(store.dir);
    try {
      const q = await runReadOnly(s, `SELECT name, value FROM metrics WHERE node_id = 'merged' AND key = '${r.nodes.get('merged')!.key}' AND name LIKE 'pick/%' ORDER BY name`);
      const m = Object.fromEntries(q.rows.map((x) => [x.name as string, x.value as number]));
      for (const meth of METHODS) {
        expect(m[`pick/${meth}/success`]).toBeCloseTo((scores[meth][0] + scores[meth][1]) / 2, 9);
        expect(m[`pick/${meth}/chosen`]).toBe(meth === best ? 1 : 0);
      }
    } finally {
      s.close();
    }
  }, 180_000);

  it('refuses labels that do not match the candidates, before copying anything', async () => {
    const d = dag('pick-bad', (b) => {
      const base = b.node('base', tinyLlama, { which: 'm0' });
      const experts = [1, 2].map((s) => b.node(`e${s}`, tinyLlama, { which: `m${s}` }));
      const c = b.node('merge_ties', merge, { method: 'ties', density: 0.5 }, { base, experts });
      b.node('merged', pickMerge, { labels: ['ties', 'dare'] }, { summary: b.node('merge_pick', summary, { rows: [{ model: 'ties', world: 'w', success: 1 }] }), candidates: [c] });
    });
    const r = await runDag(d, { storeDir: store.dir });
    expect(r.ok).toBe(false);
    expect(r.nodes.get('merged')?.error).toMatch(/1 candidates but 2 labels \(ties, dare\)/);
  }, 180_000);
});
