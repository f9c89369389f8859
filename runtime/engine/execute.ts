import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ArtifactSpec, InputSpec, OperatorContext } from './operator.ts';
import type { KeyedNode } from './keys.ts';
import type { Reporter } from './progress.ts';
import type { ArtifactRow, Ledger, Manifest, MetricRow } from '../../storage/ledger.ts';
import { checksumDir, LONE_SURROGATE, MANIFEST, Store } from '../../storage/store.ts';
import { TableReader, TableWriter } from '../../storage/table.ts';
import { schemaSignature } from '../../storage/codec.ts';
import { markRetry } from './retry.ts';

/*
 * Runs one node: builds its input handles from committed artifacts (checksums verified), stages its output in a
 * temp dir, and on success publishes it and records the artifact, lineage and execution in one ledger
 * transaction. On failure or cancellation nothing is committed; checkpoints stay for the next attempt.
 */

export interface ExecEnv {
  store: Store;
  ledger: Ledger;
  reporter: Reporter;
  runId: string;
  dag: string;
  signal: AbortSignal;
}

export class NodeFailure extends Error {
  constructor(readonly nodeId: string, message: string, readonly cause?: unknown) { super(message); this.name = 'NodeFailure'; }
}

function inputHandle(env: ExecEnv, spec: ArtifactSpec, art: ArtifactRow, nodeId: string) {
  env.store.verify(art.key, art.files, art.node_id);
  const dir = env.store.artifactDir(art.key);
  const ref = { node: art.node_id, key: art.key };
  switch (spec.kind) {
    case 'table': return new TableReader(art.node_id, art.key, [join(dir, 'data.parquet')], spec.schema);
    case 'report': {
      const parsed = spec.schema.safeParse(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')));
      if (!parsed.success) throw new NodeFailure(nodeId, `input report from node ${art.node_id} no longer fits its schema: ${parsed.error.issues[0].message}`);
      return { ...ref, value: parsed.data };
    }
    default: return { ...ref, dir };
  }
}

export function buildInputs(env: ExecEnv, k: KeyedNode, arts: Map<string, ArtifactRow>) {
  const specs = k.node.op.inputs as Record<string, InputSpec>;
  const handles: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const key = k.reads[name];
    const base = spec.kind === 'many' || spec.kind === 'optional' ? spec.of : spec;
    const get = (kk: string) => {
      const a = arts.get(kk);
      if (!a) throw new NodeFailure(k.node.id, `input '${name}': no committed artifact ${kk}`);
      return inputHandle(env, base, a, k.node.id);
    };
    handles[name] = key === null || key === undefined ? undefined : Array.isArray(key) ? key.map(get) : get(key);
  }
  return handles;
}

function makeContext(env: ExecEnv, k: KeyedNode, dirs: { checkpoint: string; tmp: string }, metrics: MetricRow[], retry: { reason?: string }): OperatorContext {
  let total: number | undefined;
  let unit = 'items';
  let done = 0;
  const id = k.node.id;
  return {
    nodeId: id, runId: env.runId, key: k.key, signal: env.signal, storeDir: env.store.dir,
    checkpointDir: dirs.checkpoint, tmpDir: dirs.tmp,
    env: Object.fromEntries(Object.entries(k.parts.env).map(([a, b]) => [a, b ?? undefined])),
    progress: {
      total(n, u) { total = n; if (u) unit = u; env.reporter.nodeProgress(id, done, total, unit); },
      tick(n = 1) { done += n; env.reporter.nodeProgress(id, done, total, unit); },
      set(d) { done = d; env.reporter.nodeProgress(id, done, total, unit); },
    },
    metric(name, value, step) { metrics.push({ runId: env.runId, nodeId: id, key: k.key, step: step ?? null, name, value, ts: Date.now() }); },
    log(message) { env.reporter.log(id, message); },
    retryNextRun(reason) { retry.reason = reason; },
  };
}

/** Rows whose text holds a lone surrogate: stored, with U+FFFD in its place (UTF-8 cannot carry it), and counted. */
interface Surrogates { rows: number; first?: string }

function surrogatePath(v: unknown, path: string): string | undefined {
  if (typeof v === 'string') {
    const ok = (v as { isWellFormed?: () => boolean }).isWellFormed?.() ?? !LONE_SURROGATE.test(v);
    return ok ? undefined : path || '(value)';
  }
  if (Array.isArray(v)) { for (let i = 0; i < v.length; i++) { const p = surrogatePath(v[i], `${path}[${i}]`); if (p) return p; } return undefined; }
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) { const p = surrogatePath(x, path ? `${path}.${k}` : k); if (p) return p; }
  }
  return undefined;
}

function outputHandle(spec: ArtifactSpec, nodeId: string, stage: string, checkpoint: string, bad: Surrogates) {
  if (spec.kind === 'table') {
    const w = new TableWriter(spec.schema, nodeId, stage, checkpoint);
    let seen = 0;
    const scan = (rows: unknown[]) => {
      for (const r of rows) {
        const p = surrogatePath(r, '');
        if (p) { bad.rows++; bad.first ??= `row ${seen} field ${p}`; }
        seen++;
      }
    };
    const write = w.write.bind(w);
    const writeBatch = w.writeBatch.bind(w);
    w.write = async (rows) => { scan(rows); return write(rows); };
    w.writeBatch = async (id, rows) => { scan(rows); return writeBatch(id, rows); };
    return w;
  }
  if (spec.kind === 'report') return {};
  return { dir: stage };
}

async function finishOutput(spec: ArtifactSpec, out: unknown, result: unknown, stage: string, nodeId: string) {
  if (spec.kind === 'table') return { rows: await (out as TableWriter<never>).finish(), schema: schemaSignature(spec.schema) };
  if (spec.kind === 'report') {
    const parsed = spec.schema.safeParse(result);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new NodeFailure(nodeId, `report fails its schema at ${i.path.join('.') || '(root)'}: ${i.message}; nothing was committed`);
    }
    writeFileSync(join(stage, 'report.json'), JSON.stringify(parsed.data, null, 2));
  }
  return { rows: null, schema: null };
}

/**
 * The runner process's RSS high-water mark while a node runs (in-process work: ORT engines, tables, sandboxes'
 * parents). Nodes that run at the same time share the process, so each sees the others' memory too; workers'
 * own peaks come from them (worker_peak_rss_bytes). Sampled every 250 ms, and exact whenever the process's
 * lifetime maximum (getrusage) rose during the node.
 */
function runnerMemory(): { stop(): number } {
  const maxAtStart = process.resourceUsage().maxRSS * 1024;
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()); }, 250);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      const maxNow = process.resourceUsage().maxRSS * 1024;
      return Math.max(peak, process.memoryUsage.rss(), maxNow > maxAtStart ? maxNow : 0);
    },
  };
}

/** Executes and commits one node; throws NodeFailure (or rethrows the operator's error) when it does not commit. */
export async function executeNode(env: ExecEnv, k: KeyedNode, arts: Map<string, ArtifactRow>): Promise<ArtifactRow> {
  const { node } = k;
  const stage = env.store.tempDir(`stage-${node.id}`);
  const tmp = env.store.tempDir(`scratch-${node.id}`);
  const checkpoint = env.store.checkpointDir(k.key);
  mkdirSync(checkpoint, { recursive: true });
  const metrics: MetricRow[] = [];
  const flush = setInterval(() => { void env.ledger.insertMetrics(metrics.splice(0)); }, 2000);
  const started = Date.now();
  const memory = runnerMemory();
  try {
    const inputs = buildInputs(env, k, arts);
    const spec = node.op.output as ArtifactSpec;
    const bad: Surrogates = { rows: 0 };
    const out = outputHandle(spec, node.id, stage, checkpoint, bad);
    const retry: { reason?: string } = {};
    const ctx = makeContext(env, k, { checkpoint, tmp }, metrics, retry);
    const result = await node.op.run({ params: node.params, inputs, out, ctx } as never);
    if (env.signal.aborted) throw new NodeFailure(node.id, 'cancelled');
    const { rows, schema } = await finishOutput(spec, out, result, stage, node.id);
    if (bad.rows) {
      env.reporter.log(node.id, `${bad.rows} output row(s) held text with a lone UTF-16 surrogate (first: ${bad.first}); each was stored as U+FFFD (the metric rows_with_lone_surrogates counts them)`);
      metrics.push({ runId: env.runId, nodeId: node.id, key: k.key, step: null, name: 'rows_with_lone_surrogates', value: bad.rows, ts: Date.now() });
    }
    if (env.signal.aborted) throw new NodeFailure(node.id, 'cancelled');
    const files = checksumDir(stage, true);
    const art = {
      key: k.key, node_id: node.id, dag: env.dag, op: node.op.name, version: node.op.version, kind: spec.kind,
      path: `artifacts/${k.key}`, schema, rows, bytes: files.reduce((s, f) => s + f.size, 0), files, parts: k.parts, run_id: env.runId,
      // A forced rerun keeps its key's identity: consumers already keyed on it.
      same_as: arts.has(k.key) ? arts.get(k.key)!.same_as ?? null : await env.ledger.sameContent(node.id, k.key, files),
    };
    const lineage = Object.entries(k.reads).flatMap(([input, v]) => (v === null ? [] : (Array.isArray(v) ? v : [v]).map((parent) => ({ input, parent }))));
    // The manifest goes in before the folder is published: an artifact folder always says what it is, which is
    // what rebuilds a lost ledger (gc --repair).
    const manifest: Manifest = { format: 1, artifact: art, lineage, committed_at: new Date().toISOString() };
    writeFileSync(join(stage, MANIFEST), JSON.stringify(manifest));
    env.store.publish(stage, k.key, files);
    await env.ledger.commitArtifact(art, lineage, {
      runId: env.runId, nodeId: node.id, dag: env.dag, op: node.op.name, version: node.op.version, key: k.key,
      status: 'committed', seconds: (Date.now() - started) / 1000, params: node.params,
    });
    env.store.markCommitted(k.key, art.same_as);
    if (retry.reason) {
      markRetry(checkpoint, retry.reason);
      env.reporter.log(node.id, `committed; it runs again on the next run: ${retry.reason}`);
    } else rmSync(checkpoint, { recursive: true, force: true });
    return { ...art, committed_at: new Date().toISOString() };
  } finally {
    clearInterval(flush);
    metrics.push({ runId: env.runId, nodeId: node.id, key: k.key, step: null, name: 'runner_peak_rss_bytes', value: memory.stop(), ts: Date.now() });
    await env.ledger.insertMetrics(metrics.splice(0)).catch(() => undefined);
    rmSync(stage, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  }
}
