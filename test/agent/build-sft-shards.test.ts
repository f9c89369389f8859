/*
 * build-sft-shards: packing invariants (no sample split or lost, ≤ max_len, positions restart, boundaries
 * consistent), per-sample ids/mask equal the tokenizer's, truncation policy counted, mix ratios and per-task cap,
 * determinism, and one end-to-end run through the scheduler with a real store and Parquet output.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildSftRows, buildSftShards, packSamples, SftShardParams, SftShardRow, type Sample } from '../../operators/build-sft-shards.ts';
import { loadChatTokenizer, tokenizeConversation, type ChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { Trajectory } from '../../schemas/trajectory.ts';
import { TableReader } from '../../storage/table.ts';
import { conversationTrajectories, modelFromDir, rowsSource } from '../fixtures/operators.ts';
import { tinyTokenizer } from '../fixtures/python.ts';

const trajectories = conversationTrajectories;

const params = (p: Partial<z.input<typeof SftShardParams>>) => SftShardParams.parse(p);

describe('build-sft-shards', () => {
  let ct: ChatTokenizer;
  let tokDir: string;
  beforeAll(async () => {
    tokDir = await tinyTokenizer('qwen');
    ct = loadChatTokenizer(tokDir);
  }, 900_000); // first use may bootstrap the Python env

  it('packs every selected sample exactly once, within max_len, with restarting positions', () => {
    const ts = trajectories(120);
    const counts: Record<string, number> = {};
    const rows = buildSftRows(ct, ts, params({ max_len: 1024, truncation: 'truncate' }), counts);
    const byId = new Map(ts.map((t) => [t.id, t]));
    const seen: string[] = [];
    for (const r of rows) {
      expect(r.input_ids.length).toBeLessThanOrEqual(1024);
      expect(r.seq_lens.reduce((a, b) => a + b, 0)).toBe(r.input_ids.length);
      let at = 0;
      r.seq_lens.forEach((len, k) => {
        expect(r.position_ids.slice(at, at + len)).toEqual(Array.from({ length: len }, (_, j) => j));
        expect(r.loss_mask[at]).toBe(0); // no loss across a boundary
        const t = byId.get(r.trajectory_ids[k])!;
        expect(r.task_ids[k]).toBe(t.task_id);
        const want = tokenizeConversation(ct, t.messages, t.tools);
        expect(r.input_ids.slice(at, at + len)).toEqual(want.ids.slice(0, len));
        expect(r.loss_mask.slice(at, at + len)).toEqual(want.mask.slice(0, len));
        at += len;
      });
      seen.push(...r.trajectory_ids);
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(counts.samples);
    expect(counts.samples + (counts.dropped_no_target ?? 0)).toBe(ts.filter((t) => t.split === 'train').length);
    expect(counts.filtered_split).toBe(ts.filter((t) => t.split !== 'train').length);
    expect(counts.truncated).toBeGreaterThan(0);
    expect(counts.pack_fill).toBeGreaterThan(0.8);
    expect(() => SftShardRow.array().parse(rows)).not.toThrow();
  });

  it('counts the truncation policy: drop skips long samples, truncate keeps their prefix', () => {
    const ts = trajectories(60);
    const lens = ts.filter((t) => t.split === 'train').map((t) => tokenizeConversation(ct, t.messages, t.tools).ids.length);
    const long = lens.filter((l) => l > 300).length;
    expect(long).toBeGreaterThan(0);
    const drop: Record<string, number> = {};
    buildSftRows(ct, ts, params({ max_len: 300, truncation: 'drop' }), drop);
    expect(drop.dropped_too_long).toBe(long);
    expect(drop.truncated).toBeUndefined();
    const trunc: Record<string, number> = {};
    const rows = buildSftRows(ct, ts, params({ max_len: 300, truncation: 'truncate' }), trunc);
    expect((trunc.truncated ?? 0) + (trunc.dropped_truncated_no_target ?? 0)).toBe(long);
    expect(trunc.truncated).toBeGreaterThan(0);
    expect(Math.max(...rows.map((r) => r.input_ids.length))).toBeLessThanOrEqual(300);
  });

  it('applies mix ratios and the per-task cap, deterministically and independent of input order', () => {
    const ts = trajectories(200, ['synth', 'synth', 'synth', 'rollout']);
    const c = (xs: string[], v: string) => xs.filter((x) => x === v).length;
    const train = ts.filter((t) => t.split === 'train');
    const mixed = buildSftRows(ct, ts, params({ max_len: 4096, truncation: 'truncate', mix: { synth: 2, rollout: 1 }, seed: 3 }));
    const sources = mixed.flatMap((r) => r.sources);
    expect(c(sources, 'rollout')).toBe(c(train.map((t) => t.source), 'rollout')); // the limiting group is kept whole
    expect(c(sources, 'synth')).toBe(2 * c(sources, 'rollout'));
    const p = params({ max_len: 4096, truncation: 'truncate', max_per_task: 6, seed: 3 });
    const rows = buildSftRows(ct, ts, p);
    const tasks = rows.flatMap((r) => r.task_ids);
    for (let k = 0; k < 10; k++) expect(c(tasks, `task${k}`)).toBe(6);
    expect(buildSftRows(ct, [...ts].reverse(), p)).toEqual(rows);
    expect(buildSftRows(ct, ts, { ...p, seed: 4 })).not.toEqual(rows);
    expect(() => buildSftRows(ct, ts, params({ mix: { nope: 1 } }))).toThrow(/mix names source nope.*present: synth, rollout/);
  });

  it('best-fit packing beats one-sample-per-row and never overflows', () => {
    const mk = (len: number): Sample => ({ ids: new Int32Array(len), mask: new Uint8Array(len), task_id: '', source: '', trajectory_id: String(len) });
    const lens = [900, 600, 500, 400, 300, 124, 100, 76, 24, 1000, 1];
    const packs = packSamples(lens.map(mk), 1000);
    expect(packs.map((p) => p.reduce((s, x) => s + x.ids.length, 0)).every((n) => n <= 1000)).toBe(true);
    expect(packs.flat().length).toBe(lens.length);
    expect(packs.length).toBe(Math.ceil(lens.reduce((a, b) => a + b, 0) / 1000)); // optimal here: 4025 → 5
  });

  it('runs as a DAG node and writes Parquet rows the trainer can read', async () => {
    const store = mkdtempSync(join(tmpdir(), 'af-sft-'));
    try {
      const ts = trajectories(40);
      const source = rowsSource('test-sft-trajectories', Trajectory, ts);
      const tokenizer = modelFromDir('test-sft-model');
      const d = dag('sft-test', (b) => {
        const trajs = b.node('trajs', source, {});
        const m = b.node('model', tokenizer, { dir: tokDir });
        b.node('shards', buildSftShards, { max_len: 1024, truncation: 'truncate' }, { trajectories: trajs, model: m });
      });
      const r = await runDag(d, { storeDir: store });
      expect(r.nodes.get('shards')?.error).toBeUndefined();
      const key = r.nodes.get('shards')!.key;
      const rows = await new TableReader('shards', key, [join(store, 'artifacts', key, 'data.parquet')], SftShardRow).all();
      expect(rows).toEqual(buildSftRows(ct, ts, params({ max_len: 1024, truncation: 'truncate' })));
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  }, 60_000);
});
