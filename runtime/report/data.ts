/*
 * Data composition: tasks and trajectories by world and difficulty, why rows were rejected (verifier and filter
 * reasons), tokens per SFT sample and the share of SFT tokens that are trained (the assistant-only loss mask).
 */
import { addChart, section, type Query, type Section } from './model.ts';

const TASK_OPS = ['make-tasks'];
const TRAJECTORY_OPS = ['synthesize', 'import-data', 'filter'];

export async function dataSection(q: Query): Promise<Section> {
  const s = section('data', 'Data composition');
  const byWorld = async (node: string, what: string) => {
    const v = q.view(node);
    if (!v) { s.missing.push(`${node}: no committed table yet`); return; }
    addChart(s, await q.chart({ id: `data-${node}`, title: `${node}: ${what} by world and difficulty`, kind: 'stack',
      sql: `SELECT world, 'd' || difficulty AS difficulty, count(*)::INT AS n FROM ${v} GROUP BY ALL ORDER BY world, difficulty`,
      x: 'world', y: 'n', z: 'difficulty', yLabel: what }), `${node}: empty table`);
  };
  for (const node of q.nodesOf(...TASK_OPS)) await byWorld(node, 'tasks');
  for (const node of q.nodesOf(...TRAJECTORY_OPS)) await byWorld(node, 'trajectories');
  if (!q.nodesOf(...TASK_OPS, ...TRAJECTORY_OPS).length) s.missing.push('no task or trajectory table in this DAG (make-tasks, synthesize, import-data, filter)');

  for (const node of q.nodesOf('verify')) {
    const v = q.view(node);
    if (!v) { s.missing.push(`${node}: no verdicts yet`); continue; }
    addChart(s, await q.chart({ id: `reasons-${node}`, title: `${node}: why the verifier failed trajectories`, kind: 'bar',
      sql: `SELECT split_part(r, ':', 1) AS reason, count(*)::INT AS n FROM (SELECT unnest(reasons) AS r FROM ${v}) GROUP BY ALL ORDER BY n DESC, reason LIMIT 30`,
      x: 'reason', y: 'n' }), `${node}: every trajectory passed the verifier`);
  }
  for (const node of q.nodesOf('filter')) {
    const v = q.view(node);
    if (!v) continue;
    addChart(s, await q.chart({ id: `filter-${node}`, title: `${node}: filter reasons of the rows it emitted`, kind: 'bar',
      sql: `SELECT split_part(r, ':', 1) AS reason, count(*)::INT AS n FROM (SELECT unnest(filter_reasons) AS r FROM ${v}) GROUP BY ALL ORDER BY n DESC, reason LIMIT 30`,
      x: 'reason', y: 'n' }), `${node}: emits kept rows only (a second filter node with emit: 'rejected' would show why rows went)`);
  }

  for (const node of q.nodesOf('build-sft-shards')) {
    const v = q.view(node);
    if (!v) { s.missing.push(`${node}: no SFT shards yet`); continue; }
    addChart(s, await q.chart({ id: `tokens-${node}`, title: `${node}: tokens per sample (histogram, bins of 32)`, kind: 'bar',
      sql: `SELECT (floor(l / 32) * 32)::INT AS tokens, count(*)::INT AS samples FROM (SELECT unnest(seq_lens) AS l FROM ${v}) GROUP BY ALL ORDER BY tokens`,
      x: 'tokens', y: 'samples' }), `${node}: no samples`);
    const sql = `SELECT count(*)::INT AS packs, sum(len(seq_lens))::INT AS samples, sum(len(input_ids))::BIGINT AS tokens,
  sum(list_sum(loss_mask))::BIGINT AS trained_tokens, round(sum(list_sum(loss_mask)) / sum(len(input_ids)), 4) AS trained_share FROM ${v}`;
    s.tables.push({ title: `${node}: trained-token share of the SFT rows`, columns: ['packs', 'samples', 'tokens', 'trained_tokens', 'trained_share'], rows: await q.rows(sql), sql });
  }
  if (!q.nodesOf('build-sft-shards').length) s.missing.push('no build-sft-shards node: no SFT token statistics');
  return s;
}
