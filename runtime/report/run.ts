/*
 * The run: which run is reported, a timeline of its node executions (one bar per execution), and a table of every
 * node of the DAG with its state, key, last status, duration and rows. Nodes that never committed are named.
 */
import type { Dag } from '../engine/dag.ts';
import type { NodeStatusReport } from '../engine/status.ts';
import { addChart, lit, section, type Query, type Row, type Section } from './model.ts';

export async function latestRun(q: Query, dag: string | null): Promise<Row | null> {
  const where = dag ? `WHERE dag = ${lit(dag)}` : '';
  const rows = await q.rows(`SELECT run_id, dag, status, CAST(started_at AS VARCHAR) AS started_at,
    round(epoch(finished_at - started_at), 2) AS seconds FROM runs ${where} ORDER BY started_at DESC LIMIT 1`);
  return rows[0] ?? null;
}

export async function runSection(q: Query, run: Row | null, dag: Dag | null, status: NodeStatusReport[] | null): Promise<Section> {
  const s = section('run', 'The run');
  if (!run) {
    s.missing.push(`no run of ${q.scope.dag ? `DAG '${q.scope.dag}'` : 'any DAG'} in this store's ledger: run it with \`agentforge run ${dag ? 'DAG' : '<dag>'}\``);
    return s;
  }
  const runId = lit(String(run.run_id));
  addChart(s, await q.chart({
    id: 'timeline', title: `Timeline of run ${run.run_id} (${run.status}): one bar per node execution`, kind: 'gantt',
    sql: `WITH e AS (SELECT * FROM executions WHERE run_id = ${runId}),
  t0 AS (SELECT min(epoch_ms(started_at)) AS t FROM e)
SELECT e.node_id AS node, e.op, e.status, (epoch_ms(e.started_at) - t0.t) / 1000.0 AS start_s,
  (epoch_ms(e.finished_at) - t0.t) / 1000.0 AS end_s, round(e.seconds, 3) AS seconds
FROM e, t0 ORDER BY e.started_at, e.node_id`,
    x: 'start_s', x2: 'end_s', y: 'node', z: 'status', xLabel: 'seconds since the run started',
  }), `run ${run.run_id} executed no node (every node was cached: its timeline is in the run that computed it)`);

  const last = await q.rows(`SELECT e.node_id AS node, e.op, e.status, e.key, e.run_id, round(e.seconds, 3) AS seconds, e.error,
    a.rows::BIGINT AS rows FROM (SELECT *, row_number() OVER (PARTITION BY node_id ORDER BY finished_at DESC) AS rn FROM executions
    ${q.scope.dag ? `WHERE dag = ${lit(q.scope.dag)}` : ''}) e LEFT JOIN artifacts a ON a.key = e.key WHERE rn = 1`);
  const byNode = new Map(last.map((r) => [String(r.node), r]));
  const state = new Map((status ?? []).map((r) => [r.node, r]));
  const rows: Row[] = [];
  for (const [node, op] of q.scope.nodes) {
    const e = byNode.get(node);
    const st = state.get(node);
    rows.push({
      node, op, state: st?.state ?? (e?.status === 'committed' ? 'committed' : 'missing'),
      last_status: e?.status ?? 'never run', key: String(st?.key ?? e?.key ?? '').slice(0, 12), seconds: e?.seconds ?? null,
      rows: e?.rows ?? null, run: e?.run_id ?? null, why: e?.error && e.status !== 'committed' ? String(e.error).split('\n')[0] : st?.why.join('; ') ?? '',
    });
  }
  s.tables.push({ title: 'Nodes (state: fresh = committed for the current code and params)', columns: ['node', 'op', 'state', 'last_status', 'key', 'seconds', 'rows', 'run', 'why'], rows });
  const failed = rows.filter((r) => r.last_status === 'failed' || r.last_status === 'cancelled');
  for (const r of failed) s.notes.push(`node ${r.node} ${r.last_status} in run ${r.run}: ${r.why}`);
  const absent = rows.filter((r) => r.state !== 'fresh' && r.state !== 'committed').map((r) => `${r.node} (${r.state})`);
  if (absent.length) s.missing.push(`nodes without a current committed result: ${absent.join(', ')}; the sections below show what exists`);
  return s;
}
