/*
 * The `report` CLI command: the HTML page, and on request the metrics for TensorBoard and W&B.
 *   agentforge report [DAG] [--out report.html] [--tensorboard] [--wandb metrics.jsonl]
 */
import { join } from 'node:path';

type Opt = { type: 'string' | 'boolean'; help: string };

export const reportCommand = {
  name: 'report',
  summary: 'one offline HTML page of a run: timeline, curves, data, eval, merge',
  usage: 'report [DAG] [--out report.html] [--tensorboard] [--wandb FILE]',
  options: {
    out: { type: 'string', help: 'where to write the page (default report.html)' },
    tensorboard: { type: 'boolean', help: "also write each node's step metrics as TensorBoard event files under STORE/tensorboard/<node>-<key12>" },
    wandb: { type: 'string', help: 'also write the metrics table as W&B-style history JSONL to FILE (upload it with your own key; see the README)' },
  } as Record<string, Opt>,
  async run(pos: string[], v: Record<string, unknown>): Promise<number> {
    const { resolveStoreDir } = await import('../../storage/store.ts');
    const storeDir = resolveStoreDir(v.store as string | undefined);
    const dag = pos[0] ? (await import('../engine/cli/load.ts').then((m) => m.loadDag(pos[0]))).dag : null;
    const { writeReport } = await import('./report.ts');
    const r = await writeReport({ storeDir, dag, out: (v.out as string | undefined) ?? 'report.html' });
    console.log(`report: ${r.path} (${(r.bytes / 1e3).toFixed(0)} kB, ${r.charts} charts, ${r.missing} missing items listed)`);
    if (v.tensorboard) {
      const { exportTensorboard } = await import('./tensorboard.ts');
      const dirs = await exportTensorboard(storeDir, join(storeDir, 'tensorboard'), dag?.name ?? null);
      console.log(`tensorboard: ${dirs.length} run dirs under ${join(storeDir, 'tensorboard')} (tensorboard --logdir ${join(storeDir, 'tensorboard')})`);
    }
    if (v.wandb) {
      const { exportWandb } = await import('./wandb.ts');
      const w = await exportWandb(storeDir, String(v.wandb), dag?.name ?? null);
      console.log(`wandb: ${w.rows} history rows of ${w.runs} runs in ${w.path}`);
    }
    return 0;
  },
};
