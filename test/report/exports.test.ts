/*
 * The metrics exports without a model: TensorBoard event files written in TS and read back by TensorBoard's own
 * EventAccumulator (the runtime node's pinned env), and the W&B history JSONL of a smoke run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { crc32c, exportTensorboard, writeEventFile } from '../../runtime/report/tensorboard.ts';
import { exportWandb } from '../../runtime/report/wandb.ts';
import smoke from '../../dags/smoke.ts';
import { pythonBin, runProcess } from '../fixtures/python.ts';

const READ = `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1]); ea.Reload()
print(json.dumps({t: [[e.step, e.value, e.wall_time] for e in ea.Scalars(t)] for t in ea.Tags()['scalars']}))`;

async function readScalars(dir: string): Promise<Record<string, [number, number, number][]>> {
  const r = await runProcess(await pythonBin(), ['-c', READ, dir]);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

describe('metrics exports', () => {
  const dir = mkdtempSync(join(tmpdir(), 'af-exports-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('CRC-32C matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
  });

  it('TensorBoard reads back every scalar with its step, value and wall time', async () => {
    const logdir = join(dir, 'tb');
    writeEventFile(logdir, [
      { tag: 'rl/reward', step: 1, value: 0.25, wallTime: 1_700_000_000.5 },
      { tag: 'rl/reward', step: 2, value: -1.5, wallTime: 1_700_000_001 },
      { tag: 'time/generate_s', step: 300_000, value: 12.75, wallTime: 1_700_000_002 },
      { tag: 'eval/sft/bank/success', step: 0, value: 0.84, wallTime: 1_700_000_003 },
    ]);
    const s = await readScalars(logdir);
    expect(s['rl/reward']).toEqual([[1, 0.25, 1_700_000_000.5], [2, -1.5, 1_700_000_001]]);
    expect(s['time/generate_s']).toEqual([[300_000, 12.75, 1_700_000_002]]);
    expect(s['eval/sft/bank/success'][0][1]).toBeCloseTo(0.84, 6);
  });

  it('a smoke run: one TensorBoard dir per node with metrics, and W&B rows per (run, step)', async () => {
    const storeDir = join(dir, 'store');
    expect((await runDag(smoke, { storeDir })).ok).toBe(true);
    const dirs = await exportTensorboard(storeDir, join(storeDir, 'tensorboard'), 'smoke');
    // every node has its memory (runner_peak_rss_bytes), so every node gets a dir
    expect(dirs.map((d) => d.split('/').pop()!.split('-')[0]).sort()).toEqual(['episodes', 'kept', 'scored', 'summary']);
    const kept = await readScalars(dirs.find((d) => d.includes('/kept-'))!);
    expect(Object.keys(kept).sort()).toEqual(['kept', 'runner_peak_rss_bytes']);
    expect(kept.kept[0][0]).toBe(0);
    expect(kept.runner_peak_rss_bytes[0][1]).toBeGreaterThan(2 ** 20);

    const w = await exportWandb(storeDir, join(dir, 'wandb.jsonl'), 'smoke');
    const rows = readFileSync(w.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(w).toMatchObject({ rows: 4, runs: 4 });
    const scored = rows.find((r) => String(r._run).startsWith('smoke/scored-'));
    expect(scored).toMatchObject({ _step: 0 });
    expect(scored.rows).toBeGreaterThan(0);
    expect(await exportWandb(storeDir, join(dir, 'none.jsonl'), 'no-such-dag')).toMatchObject({ rows: 0, runs: 0 });
  });
});
