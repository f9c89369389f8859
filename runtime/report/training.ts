/*
 * Training curves from the ledger's metrics table: SFT loss and learning rate per step; per RL run the reward and
 * each reward component, success, KL, entropy, clip fraction, staleness and the step-time breakdown as stacked bars
 * (the paper's Figure 5). A step logged twice (a resumed run) shows its last value.
 */
import { addChart, lit, section, type Query, type Section } from './model.ts';

/** The key whose metrics are shown: the node's latest committed artifact, else its latest execution (a failed run). */
export async function nodeKey(q: Query, node: string): Promise<string | null> {
  const dag = q.scope.dag ? `AND dag = ${lit(q.scope.dag)}` : '';
  const rows = await q.rows(`SELECT key FROM (
    SELECT key, committed_at AS t, 0 AS pri FROM artifacts WHERE node_id = ${lit(node)} ${dag}
    UNION ALL SELECT key, finished_at AS t, 1 AS pri FROM executions WHERE node_id = ${lit(node)} ${dag})
    ORDER BY pri, t DESC LIMIT 1`);
  return rows.length ? String(rows[0].key) : null;
}

/** `names`: SQL predicate over `name`. */
export function metricSql(node: string, key: string, names: string, series = false): string {
  return `SELECT step::INT AS step, ${series ? 'name, ' : ''}arg_max(value, ts) AS value FROM metrics
WHERE node_id = ${lit(node)} AND key = ${lit(key)} AND (${names}) AND step IS NOT NULL AND value IS NOT NULL
GROUP BY ALL ORDER BY ${series ? 'name, ' : ''}step`;
}

const inList = (names: string[]) => `name IN (${names.map(lit).join(', ')})`;

export async function sftSection(q: Query): Promise<Section> {
  const s = section('sft', 'SFT');
  const nodes = q.nodesOf('train-sft');
  if (!nodes.length) s.missing.push('no train-sft node in this DAG');
  for (const node of nodes) {
    const key = await nodeKey(q, node);
    if (!key) { s.missing.push(`${node}: never run, no metrics yet`); continue; }
    for (const [name, label] of [['loss', 'loss'], ['lr', 'learning rate'], ['grad_norm', 'gradient norm']] as const) {
      addChart(s, await q.chart({ id: `sft-${node}-${name}`, title: `${node}: ${label} per step`, kind: 'line',
        sql: metricSql(node, key, inList([name])), x: 'step', y: 'value', yLabel: label }), `${node}: no '${name}' metric recorded (key ${key.slice(0, 12)})`);
    }
  }
  return s;
}

const RL_CHARTS: Array<{ id: string; title: string; names: string; series?: boolean; missing: string; share?: boolean }> = [
  { id: 'reward', title: 'reward and its components (mean per rollout)', names: "name = 'rl/reward' OR name LIKE 'rl/reward\\_%' ESCAPE '\\'", series: true, missing: 'reward' },
  { id: 'success', title: 'success (share of rollouts the verifier passed)', names: "name = 'rl/success'", missing: 'success', share: true },
  { id: 'kl', title: 'KL: to the reference (kl) and behaviour ↔ trainer mismatch (mismatch_kl)', names: "name IN ('train/kl', 'train/mismatch_kl')", series: true, missing: 'KL' },
  { id: 'entropy', title: 'token entropy of the policy', names: "name = 'train/entropy'", missing: 'entropy' },
  { id: 'clip', title: 'clip fraction', names: "name IN ('train/clip_frac', 'train/clip_frac_low', 'train/clip_frac_high')", series: true, missing: 'clip fraction' },
  { id: 'staleness', title: 'staleness (policy versions behind)', names: "name LIKE 'rl/stale%' OR name LIKE 'train/stale%'", series: true, missing: 'staleness (recorded by asynchronous RL only)' },
  // Per role, so not stacked with the phases below: in async mode the roles' times overlap.
  { id: 'idle', title: 'idle time per role (s): the trainer waiting for rollouts, the rollout side waiting for weights', names: "name IN ('time/trainer_idle_s', 'time/rollout_idle_s')", series: true, missing: 'idle-time' },
  { id: 'queues', title: 'queue depths: steps generated ahead, requests in flight', names: "name LIKE 'rl/queue\\_%' ESCAPE '\\'", series: true, missing: 'queue-depth' },
];
/** Figure 5's breakdown; rollout_wall_s overlaps generate and env, so it is not stacked. */
const STEP_TIMES = ['time/generate_s', 'time/env_s', 'time/reward_s', 'time/train_s', 'time/sync_s'];

export async function rlSection(q: Query): Promise<Section> {
  const s = section('rl', 'RL');
  const nodes = q.nodesOf('train-rl');
  if (!nodes.length) s.missing.push('no train-rl node in this DAG');
  for (const node of nodes) {
    const key = await nodeKey(q, node);
    if (!key) { s.missing.push(`${node}: never run, no metrics yet`); continue; }
    for (const c of RL_CHARTS) {
      addChart(s, await q.chart({ id: `rl-${node}-${c.id}`, title: `${node}: ${c.title}`, kind: 'line',
        sql: metricSql(node, key, c.names, c.series), x: 'step', y: 'value', z: c.series ? 'name' : undefined, yDomain: c.share ? [0, 1] : undefined }), `${node}: no ${c.missing} metric`);
    }
    addChart(s, await q.chart({ id: `rl-${node}-time`, title: `${node}: step time by phase (s)`, kind: 'stack',
      sql: metricSql(node, key, inList(STEP_TIMES), true), x: 'step', y: 'value', z: 'name', yLabel: 'seconds' }), `${node}: no step-time metrics`);
  }
  return s;
}
