/*
 * Held-out results by slice: difficulty and seen/unseen template, and each model's paired gain over SFT with its
 * bootstrap interval — pure (summarize, sliceTable) and through the operators in a DAG on real task tables.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { evalSlices } from '../../operators/eval-slices.ts';
import { evalSummary } from '../../operators/eval-summary.ts';
import { makeTasks } from '../../operators/make-tasks.ts';
import { dag } from '../../runtime/engine/dag.ts';
import { operator, table } from '../../runtime/engine/operator.ts';
import { silentReporter } from '../../runtime/engine/progress.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { pairedGains, sliceTable, summarize } from '../../runtime/eval/summarize.ts';
import { EvalRollout, EvalRow, EvalSliceRow } from '../../schemas/eval.ts';
import { Task } from '../../schemas/task.ts';
import { TableReader } from '../../storage/table.ts';
import { rolloutRow } from '../rl-loop/rows.ts';

const evalRow = (model: string, world: string, task: string, success: boolean, difficulty: number) =>
  ({ ...rolloutRow(world, task, success, { difficulty }), model, temperature: 0, verdict: success ? [] : ['x'] });

describe('summaries by slice', () => {
  it('success per difficulty next to the unchanged totals; template slices only when the tasks are known', () => {
    const rows = [evalRow('m', 'retail', 'a', true, 1), evalRow('m', 'retail', 'b', false, 1), evalRow('m', 'retail', 'c', true, 3), evalRow('m', 'retail', 'd', true, 10)];
    const [s] = summarize('m', rows, 0);
    expect(s).toMatchObject({ tasks: 4, success: 0.75 });
    expect(s.slices).toEqual([
      { slice: 'difficulty:1', tasks: 2, success: 0.5 }, { slice: 'difficulty:3', tasks: 1, success: 1 }, { slice: 'difficulty:10', tasks: 1, success: 1 },
    ]);
    const seen = new Set(['a', 'b']);
    const [withFacts] = summarize('m', rows, 0, (id) => ({ template_seen: seen.has(id) }));
    expect(withFacts.slices!.slice(3)).toEqual([{ slice: 'template:seen', tasks: 2, success: 0.5 }, { slice: 'template:unseen', tasks: 2, success: 1 }]);
  });

  it('paired gains: identical models gain 0 with [0, 0]; a model better on every unseen task gains 1 there, 0 on the seen ones', () => {
    const tasks = Array.from({ length: 40 }, (_, i) => ({ id: `t${i}`, unseen: i % 2 === 1, d: i % 2 ? 3 : 1 }));
    const sft = tasks.map((t) => evalRow('sft', 'bank', t.id, !t.unseen && Number(t.id.slice(1)) % 4 === 0, t.d));
    const rl = tasks.map((t) => evalRow('rl', 'bank', t.id, t.unseen || Number(t.id.slice(1)) % 4 === 0, t.d));
    const facts = (id: string) => ({ template_seen: !tasks.find((t) => t.id === id)!.unseen });
    const same = pairedGains(sft, sft, 'sft', facts).get('bank')!;
    expect(same.every((g) => g.diff === 0 && g.lo === 0 && g.hi === 0)).toBe(true);
    const g = Object.fromEntries(pairedGains(rl, sft, 'sft', facts).get('bank')!.map((x) => [x.slice, x]));
    expect(Object.keys(g)).toEqual(['all', 'difficulty:1', 'difficulty:3', 'template:seen', 'template:unseen']);
    expect(g['template:unseen']).toMatchObject({ tasks: 20, diff: 1, lo: 1, hi: 1, baseline: 'sft' });
    expect(g['template:seen']).toMatchObject({ tasks: 20, diff: 0, lo: 0, hi: 0 });
    expect(g.all.diff).toBeCloseTo(0.5, 12);
    expect(g.all.lo).toBeGreaterThan(0.3);

    const table = sliceTable(new Map([['sft', sft], ['rl', rl]]), 'sft', facts);
    const row = (m: string, w: string, s: string) => table.find((r) => r.model === m && r.world === w && r.slice === s)!;
    expect(row('sft', '*', 'template:unseen')).toMatchObject({ success: 0, gain: null, baseline: null });
    expect(row('rl', '*', 'template:unseen')).toMatchObject({ success: 1, gain: 1, gain_lo: 1, gain_hi: 1, baseline: 'sft' });
    expect(row('rl', 'bank', 'all').gain).toBeCloseTo(0.5, 12);
  });
});

describe('eval-summary and eval-slices on real held-out task tables', () => {
  it('rl wins every probe task, ties the rest: the unseen slice gains +1 [1, 1], seen 0; nested slices round-trip Parquet', async () => {
    // stand-in evaluation: sft solves the in-distribution tasks of even index, rl those and every probe task
    const fake = operator({
      name: 'test-probe-rollouts', version: 1, params: z.object({}), inputs: { tasks: table(Task, 'Task') }, output: table(EvalRollout),
      async run({ inputs, out }) {
        const ts = await inputs.tasks.all();
        const ok = (t: Task, m: string) => (t.template_seen ? Number(t.id.slice(-1)) % 2 === 0 : m === 'rl');
        await out.write(['sft', 'rl'].flatMap((m) => ts.map((t) => EvalRollout.parse({ ...evalRow(m, t.world, t.id, ok(t, m), t.difficulty), id: `${m}-${t.id}` }))));
      },
    });
    const store = mkdtempSync(join(tmpdir(), 'af-slices-'));
    try {
      const d = dag('slices', (b) => {
        const heldout = b.node('heldout_tasks', makeTasks, { worlds: ['retail', 'bank'], n: 20, split: 'heldout', max_difficulty: 2, distractor_rate: 0 });
        const rollouts = b.node('eval_rollouts', fake, {}, { tasks: heldout });
        b.node('eval', evalSummary, {}, { rollouts });
        b.node('eval_slices', evalSlices, {}, { rollouts, tasks: heldout });
      });
      const logs: string[] = [];
      const r = await runDag(d, { storeDir: store, reporter: { ...silentReporter, log: (_id, m) => logs.push(m) } });
      expect([...r.nodes].filter(([, n]) => n.error).map(([id, n]) => `${id}: ${n.error}`)).toEqual([]);
      const read = <T>(id: string, schema: z.ZodType) => new TableReader<T>(id, r.nodes.get(id)!.key, [join(store, 'artifacts', r.nodes.get(id)!.key, 'data.parquet')], schema as never).all();
      const tasks = await read<Task>('heldout_tasks', Task);
      expect(tasks.filter((t) => t.template_seen === false)).toHaveLength(20);
      expect(tasks.every((t) => typeof t.template === 'string')).toBe(true);

      const slices = await read<EvalSliceRow>('eval_slices', EvalSliceRow);
      const at = (m: string, w: string, s: string) => slices.find((x) => x.model === m && x.world === w && x.slice === s);
      expect(at('rl', '*', 'template:unseen')).toMatchObject({ tasks: 20, success: 1, gain: 1, gain_lo: 1, gain_hi: 1, baseline: 'sft', level: 0.95 });
      expect(at('rl', '*', 'template:seen')).toMatchObject({ tasks: 20, gain: 0, gain_lo: 0, gain_hi: 0 });
      expect(at('sft', 'retail', 'all')).toMatchObject({ tasks: 20, gain: null });
      expect(slices.some((x) => x.slice === 'difficulty:3')).toBe(true);
      expect(logs.some((m) => /^rl template:unseen: 100\.0% of 20 tasks, \+100\.0 points over sft \[\+100\.0, \+100\.0\]$/.test(m))).toBe(true);

      const summary = await read<EvalRow>('eval', EvalRow);
      const rl = summary.find((x) => x.model === 'rl' && x.world === 'bank')!;
      expect(rl.slices!.map((s) => s.slice)).toEqual([...new Set(tasks.filter((t) => t.world === 'bank').map((t) => t.difficulty))].sort((a, b) => a - b).map((k) => `difficulty:${k}`));
      expect(rl.gains![0]).toMatchObject({ baseline: 'sft', slice: 'all', tasks: 20, diff: 0.5 });
      expect(summary.find((x) => x.model === 'sft')!.gains ?? []).toEqual([]);
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  });
});
