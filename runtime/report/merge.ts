/*
 * Merge diagnostics from each merge node's merge.json: method, params, inputs and timing; per-tensor diagnostics
 * (TIES sign agreement, kept fraction) when the record carries them, else the page says they are not recorded.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lit, section, type Query, type Row, type Section } from './model.ts';

/** Per-tensor rows the merge engine may record under one of these names. */
const PER_TENSOR = ['diagnostics', 'per_tensor', 'tensor_stats'];

export async function mergeSection(q: Query, storeDir: string): Promise<Section> {
  const s = section('merge', 'Merge');
  const nodes = q.nodesOf('merge');
  if (!nodes.length) s.missing.push('no merge node in this DAG');
  for (const node of nodes) {
    const dag = q.scope.dag ? `AND dag = ${lit(q.scope.dag)}` : '';
    const [a] = await q.rows(`SELECT key, path FROM artifacts WHERE node_id = ${lit(node)} ${dag} ORDER BY committed_at DESC LIMIT 1`);
    const file = a ? join(storeDir, String(a.path), 'merge.json') : '';
    if (!a || !existsSync(file)) { s.missing.push(`${node}: no committed merge (merge.json) yet`); continue; }
    const rec = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const params = (rec.params ?? {}) as Record<string, unknown>;
    const inputs = rec.inputs as { base?: { node: string } | null; experts?: { node: string }[] } | undefined;
    s.tables.push({ title: `${node}: ${file}`, columns: ['method', 'base', 'experts', 'density', 'lambda', 'tensors', 'MB in', 'MB out', 'seconds', 'statistics s'], rows: [{
      method: rec.method, base: inputs?.base?.node ?? null, experts: (inputs?.experts ?? []).map((e) => e.node).join(', '),
      density: params.density ?? null, lambda: params.lambda ?? null, tensors: rec.tensors,
      'MB in': round(Number(rec.bytesIn) / 1e6), 'MB out': round(Number(rec.bytesOut) / 1e6), seconds: round(Number(rec.seconds)),
      'statistics s': round(Number(rec.secondsStatistics)),
    }] });
    const perTensor = PER_TENSOR.map((k) => rec[k]).find((x) => Array.isArray(x)) as Row[] | undefined;
    if (!perTensor?.length) {
      s.missing.push(`${node}: merge.json records no per-tensor diagnostics (sign agreement, kept fraction): the merge engine writes them for TIES and DARE only, from merge version 4`);
      continue;
    }
    const cols = Object.keys(perTensor[0]).filter((k) => typeof perTensor[0][k] === 'number');
    s.tables.push({ title: `${node}: per-tensor diagnostics`, columns: Object.keys(perTensor[0]), rows: perTensor.slice(0, 200) });
    for (const c of cols) {
      s.charts.push({ id: `merge-${node}-${c}`, title: `${node}: ${c} per tensor`, kind: 'bar', sql: `-- from ${file}`, rows: perTensor,
        x: Object.keys(perTensor[0]).find((k) => typeof perTensor[0][k] === 'string') ?? 'tensor', y: c });
    }
  }
  return s;
}

const round = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);
