/*
 * `agentforge report [DAG]`: the ledger and the tables of one DAG as one offline HTML page. Without a DAG it
 * reports the DAG of the store's latest run. Every section shows what exists and lists what is missing, so the
 * report of a partial or failed run is still a report.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Dag } from '../engine/dag.ts';
import { dagStatus, type NodeStatusReport } from '../engine/status.ts';
import { openSqlSession } from '../../storage/sql.ts';
import { Query, lit, type ReportData, type Scope } from './model.ts';
import { latestRun, runSection } from './run.ts';
import { rlSection, sftSection } from './training.ts';
import { dataSection } from './data.ts';
import { evalSection } from './eval.ts';
import { mergeSection } from './merge.ts';
import { renderHtml } from './html.ts';

export interface ReportOptions { storeDir: string; dag?: Dag | null }

export async function collectReport(o: ReportOptions): Promise<ReportData> {
  const storeDir = resolve(o.storeDir);
  const session = await openSqlSession(storeDir);
  try {
    const probe = new Query(session, { dag: null, nodes: new Map(), views: new Set(session.views) });
    const hasLedger = session.views.includes('runs');
    const run = hasLedger ? await latestRun(probe, o.dag?.name ?? null) : null;
    const dagName = o.dag?.name ?? (run ? String(run.dag) : null);
    const scope: Scope = { dag: dagName, nodes: new Map(), views: new Set(session.views) };
    if (o.dag) for (const n of o.dag.nodes) scope.nodes.set(n.id, n.op.name);
    else if (hasLedger && dagName) {
      const rows = await probe.rows(`SELECT node_id, any_value(op) AS op FROM executions WHERE dag = ${lit(dagName)} GROUP BY node_id ORDER BY min(started_at), node_id`);
      for (const r of rows) scope.nodes.set(String(r.node_id), String(r.op));
    }
    const q = new Query(session, scope);
    let status: NodeStatusReport[] | null = null;
    if (o.dag && hasLedger) status = await dagStatus(o.dag, storeDir);
    const sections = hasLedger ? [
      await runSection(q, run, o.dag ?? null, status), await dataSection(q), await sftSection(q), await rlSection(q),
      await evalSection(q), await mergeSection(q, storeDir),
    ] : [];
    const report: ReportData = {
      title: `agentforge report${dagName ? `: ${dagName}` : ''}`, dag: dagName, storeDir, generatedAt: new Date().toISOString(), run, sections,
    };
    if (!hasLedger) report.sections.push({ id: 'run', title: 'The run', charts: [], tables: [], notes: [], missing: [`no ledger at ${storeDir}/ledger.duckdb: run a DAG first (agentforge run dags/smoke.ts)`] });
    return report;
  } finally {
    session.close();
  }
}

/** Writes the page; returns its path and how many charts and missing items it has. */
export async function writeReport(o: ReportOptions & { out: string }): Promise<{ path: string; charts: number; missing: number; bytes: number }> {
  const data = await collectReport(o);
  const html = await renderHtml(data);
  const path = resolve(o.out);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, html);
  return { path, charts: data.sections.reduce((n, s) => n + s.charts.length, 0), missing: data.sections.reduce((n, s) => n + s.missing.length, 0), bytes: Buffer.byteLength(html) };
}
