/*
 * Evaluation: the eval table (model × world with pass^k) and its models in evaluation order as bars (base → SFT →
 * RL → merged), test-time scaling curves (success per strategy and N; pass@k / pass^k for k = 1…N), and the
 * benchmark results tables.
 */
import { addChart, section, type Query, type Row, type Section } from './model.ts';

const firstSeen = (rows: Row[], col: string) => [...new Set(rows.map((r) => String(r[col])))];

export async function evalSection(q: Query): Promise<Section> {
  const s = section('eval', 'Evaluation');
  const nodes = q.nodesOf('eval-summary');
  if (!nodes.length) s.missing.push('no eval-summary node in this DAG');
  for (const node of nodes) {
    const v = q.view(node);
    if (!v) { s.missing.push(`${node}: no eval table yet (its models or rollouts have not committed)`); continue; }
    const sql = `SELECT model, world, tasks, samples_per_task AS samples, temperature, round(success, 4) AS success,
  round(mean_reward, 4) AS reward, to_json(pass_hat_k)::VARCHAR AS pass_hat_k FROM ${v}`;
    const rows = await q.rows(sql);
    s.tables.push({ title: `${node}: model × world (pass^k: k → share of tasks whose k samples all pass)`, columns: ['model', 'world', 'tasks', 'samples', 'temperature', 'success', 'reward', 'pass_hat_k'], rows, sql });
    addChart(s, await q.chart({ id: `eval-${node}`, title: `${node}: success by model, in evaluation order, per world`, kind: 'bar',
      sql: `SELECT model, world, success FROM ${v}`, x: 'model', y: 'success', z: 'model', fx: 'world', yDomain: [0, 1], xOrder: firstSeen(rows, 'model') }), `${node}: empty eval table`);
  }

  for (const node of q.nodesOf('best-of-n', 'self-consistency')) {
    const v = q.view(node);
    if (!v) { s.missing.push(`${node}: no test-time scaling table yet`); continue; }
    const sql = `SELECT model, world, strategy, n, tasks, round(success, 4) AS success FROM ${v} ORDER BY model, world, strategy, n`;
    const rows = await q.rows(sql);
    s.tables.push({ title: `${node}: success per model × world × strategy × N`, columns: ['model', 'world', 'strategy', 'n', 'tasks', 'success'], rows, sql });
    addChart(s, await q.chart({ id: `tts-${node}`, title: `${node}: success vs N (samples per task) by selection strategy`, kind: 'line',
      sql: `SELECT model, world, strategy, n, success FROM ${v} ORDER BY model, world, strategy, n`, x: 'n', y: 'success', z: 'strategy', fx: 'world', fy: 'model', yDomain: [0, 1] }), `${node}: empty`);
  }
  for (const node of q.nodesOf('pass-curves')) {
    const v = q.view(node);
    if (!v) { s.missing.push(`${node}: no pass@k table yet`); continue; }
    addChart(s, await q.chart({ id: `passk-${node}`, title: `${node}: pass@k and pass^k for k = 1…N`, kind: 'line',
      sql: `SELECT model, world, metric || ' ' || model AS series, k, value FROM ${v} ORDER BY model, world, metric, k`, x: 'k', y: 'value', z: 'series', fx: 'world', yDomain: [0, 1] }), `${node}: empty`);
  }
  if (!q.nodesOf('best-of-n', 'self-consistency', 'pass-curves').length) {
    s.missing.push('no test-time scaling node (best-of-n, self-consistency, pass-curves) in this DAG: see dags/tts.ts');
  }

  for (const node of q.nodesOf('eval-results', 'eval-bfcl', 'eval-code', 'eval-tau')) {
    const v = q.view(node);
    if (!v) { s.missing.push(`${node}: no benchmark table yet`); continue; }
    const cols = (await q.rows(`SELECT column_name AS c, column_type AS t FROM (DESCRIBE SELECT * FROM ${v})`))
      .filter((r) => /^(VARCHAR|DOUBLE|FLOAT|BIGINT|INTEGER|BOOLEAN)$/.test(String(r.t))).map((r) => String(r.c)).slice(0, 10);
    const sql = `SELECT ${cols.map((c) => `"${c.replace(/"/g, '""')}"`).join(', ')} FROM ${v} LIMIT 50`;
    s.tables.push({ title: `${node}: benchmark results (first 50 rows)`, columns: cols, rows: cols.length ? await q.rows(sql) : [], sql });
  }
  return s;
}
