/*
 * The metrics table as W&B history rows, one JSON object per line and per (run, step) — the shape `wandb.log`
 * takes: {"_run": "<dag>/<node>-<key12>", "_step": 3, "_timestamp": 1796…, "rl/reward": 0.4, …}. Nothing is sent:
 * the user uploads the file with their own key (the README has the five lines of Python). Steps ascend within a
 * run, as W&B requires; metrics without a step are logged at step 0.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { openSqlSession, runReadOnly } from '../../storage/sql.ts';
import { sqlString } from '../../storage/codec.ts';

export async function exportWandb(storeDir: string, out: string, dag: string | null): Promise<{ path: string; rows: number; runs: number }> {
  const session = await openSqlSession(storeDir);
  try {
    const path = resolve(out);
    mkdirSync(dirname(path), { recursive: true });
    if (!session.views.includes('metrics')) { writeFileSync(path, ''); return { path, rows: 0, runs: 0 }; }
    const where = dag ? `AND e.dag = ${sqlString(dag)}` : '';
    const { rows } = await runReadOnly(session, `SELECT e.dag || '/' || m.node_id || '-' || left(m.key, 12) AS run, coalesce(m.step, 0)::BIGINT AS step,
      m.name, arg_max(m.value, m.ts) AS value, epoch_ms(max(m.ts)) / 1000.0 AS ts
      FROM metrics m JOIN (SELECT DISTINCT key, dag FROM executions) e ON e.key = m.key WHERE TRUE ${where}
      GROUP BY ALL HAVING arg_max(m.value, m.ts) IS NOT NULL ORDER BY run, step, m.name`);
    const lines: string[] = [];
    let cur: Record<string, unknown> | null = null;
    const runs = new Set<string>();
    for (const r of rows) {
      if (!cur || cur._run !== r.run || cur._step !== Number(r.step)) {
        if (cur) lines.push(JSON.stringify(cur));
        cur = { _run: r.run, _step: Number(r.step), _timestamp: Number(r.ts) };
        runs.add(String(r.run));
      }
      cur[String(r.name)] = Number(r.value);
      cur._timestamp = Math.max(Number(cur._timestamp), Number(r.ts));
    }
    if (cur) lines.push(JSON.stringify(cur));
    writeFileSync(path, lines.length ? `${lines.join('\n')}\n` : '');
    return { path, rows: lines.length, runs: runs.size };
  } finally {
    session.close();
  }
}
