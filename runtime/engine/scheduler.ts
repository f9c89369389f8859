import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { DagValidationError, descendants, inputIds, topoOrder, validateDag, type Dag } from './dag.ts';
import { computeKeys, rekey, type KeyedNode } from './keys.ts';
import type { ExecEnv } from './execute.ts';
import { retryPending } from './retry.ts';
import { silentReporter, type NodeStatus, type Reporter } from './progress.ts';
import type { ArtifactRow } from '../../storage/ledger.ts';
import { LEDGER_FIX, LedgerLost, MANIFEST, RunLock, Store, StoreError, type CommittedIndex } from '../../storage/store.ts';
import { damagedArtifacts, folderProblem } from '../../storage/integrity.ts';

/*
 * runDag: validate → compute keys → decide what to run from the ledger alone → run in topological order with
 * independent nodes in parallel (p-queue), at most `limits[tag]` nodes per resource tag (gpu: 1) → commit each
 * node atomically. Usage in tests: `await runDag(myDag, { storeDir: tmp })`.
 */

export interface RunOptions {
  storeDir: string;
  /** Rerun these nodes even if their key is committed. */
  force?: string[];
  /** Rerun these nodes and everything downstream. */
  from?: string[];
  /** Run only these nodes; their inputs must already be committed. */
  only?: string[];
  concurrency?: number;
  limits?: Record<string, number>;
  signal?: AbortSignal;
  reporter?: Reporter;
  /** How long to wait for another run's lock before refusing (ms). */
  waitLockMs?: number;
  dagFile?: string;
}

export interface NodeResult { status: NodeStatus; key: string; error?: string; seconds?: number }
export interface RunResult { runId: string; ok: boolean; cancelled: boolean; nodes: Map<string, NodeResult> }

export class UsageError extends Error {
  constructor(message: string) { super(message); this.name = 'UsageError'; }
}

function checkNodeNames(d: Dag, names: string[] | undefined, flag: string) {
  const ids = new Set(d.nodes.map((n) => n.id));
  for (const n of names ?? []) {
    if (!ids.has(n)) throw new UsageError(`${flag} ${n}: DAG '${d.name}' has no node '${n}'; its nodes are: ${[...ids].join(', ')}`);
  }
}

/** Which nodes must execute, given committed artifacts and the flags. */
function plan(d: Dag, keys: Map<string, KeyedNode>, committed: Map<string, ArtifactRow>, store: Store, opts: RunOptions): Set<string> {
  const isCommitted = (id: string) => {
    const a = committed.get(keys.get(id)!.key);
    return !!a && existsSync(store.artifactDir(a.key));
  };
  if (opts.only?.length) {
    for (const id of opts.only) {
      const node = keys.get(id)!.node;
      for (const dep of inputIds(node)) {
        if (!opts.only.includes(dep) && !isCommitted(dep)) {
          throw new UsageError(`--only ${id}: its input node '${dep}' has no committed artifact for its current key; run '${dep}' first (or drop --only)`);
        }
      }
    }
    return new Set(opts.only);
  }
  const forced = forcedNodes(d, opts);
  // a node that asked to run again (ctx.retryNextRun) reruns with everything downstream, as with --from
  const again = descendants(d, d.nodes.filter((n) => retryPending(store, keys.get(n.id)!.key) !== null).map((n) => n.id));
  return new Set(d.nodes.filter((n) => forced.has(n.id) || again.has(n.id) || !isCommitted(n.id)).map((n) => n.id));
}

/** Nodes the flags make run whether or not their key is committed. */
function forcedNodes(d: Dag, opts: RunOptions): Set<string> {
  return new Set([...(opts.force ?? []), ...descendants(d, opts.from ?? []), ...(opts.only ?? [])]);
}

export async function runDag(d: Dag, opts: RunOptions): Promise<RunResult> {
  const problems = validateDag(d);
  if (problems.length) throw new DagValidationError(d.name, problems);
  checkNodeNames(d, opts.force, '--force');
  checkNodeNames(d, opts.from, '--from');
  checkNodeNames(d, opts.only, '--only');
  const store = new Store(opts.storeDir);
  // Before any claim (even "nothing to do"): a store with commits but no readable ledger is not an empty store.
  store.assertLedger();
  const index = store.committedIndex();
  const keys = computeKeys(d, index.sameAs);
  const reporter = opts.reporter ?? silentReporter;
  const fast = noopFastPath(keys, store, index.keys, opts);
  if (fast) {
    for (const id of fast.nodes.keys()) reporter.nodeEnd(id, 'cached');
    reporter.close();
    return fast;
  }
  // DuckDB is loaded only when something may run (it dominates process start-up).
  const { Ledger } = await import('../../storage/ledger.ts');
  const runId = `${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomUUID().slice(0, 6)}`;
  let lock: RunLock | undefined;
  let ledger: Awaited<ReturnType<typeof Ledger.open>> | undefined;
  let vouched = false;
  // Everything after the lock is inside the try: whatever fails (the ledger open included), the lock is released.
  try {
    lock = await RunLock.acquire(store, opts.waitLockMs ?? 0);
    store.assertLedger(); // again under the lock: the previous holder may have left it damaged
    ledger = await Ledger.open(store.ledgerPath);
    const killed = await ledger.markKilled();
    if (killed && lock.tookOver) reporter.log('run', `marked ${killed} earlier run(s) killed (pid ${lock.tookOver.pid} died holding the store's lock)`);
    store.sweepTemp();
    const indexed = store.committedIndex(); // again, under the lock: a run that held it may have committed since
    const lost = await ledger.missingKeys(indexed.keys);
    if (lost.length) {
      throw new LedgerLost(`ledger ${store.ledgerPath} lacks ${lost.length} artifact(s) that committed.keys records as committed (e.g. ${lost[0]}): it was replaced or rolled back. Nothing was run or deleted. ${LEDGER_FIX}`);
    }
    vouched = true;
    const committed = await ledger.artifacts([...keys.values()].map((k) => k.key));
    for (const a of committed.values()) heal(store, indexed, a);
    const toRun = plan(d, keys, committed, store, opts);
    // Cheap checks (size, Parquet magic and footer) of every committed artifact this run takes as done: a damaged
    // one is reported, never silently trusted.
    const kept = [...keys].filter(([id]) => !toRun.has(id)).map(([, k]) => committed.get(k.key)).filter((a): a is ArtifactRow => !!a);
    const damaged = damagedArtifacts(store.dir, kept);
    if (damaged.length) throw new StoreError(`${damaged.join('\n')}\n(nothing was run)`);
    await ledger.startRun(runId, d.name, opts.dagFile ?? '');
    const env: ExecEnv = { store, ledger, reporter, runId, dag: d.name, signal: opts.signal ?? new AbortController().signal };
    const nodes = await schedule(d, keys, committed, toRun, indexed, env, opts);
    const cancelled = env.signal.aborted;
    const ok = !cancelled && [...nodes.values()].every((r) => r.status === 'committed' || r.status === 'cached' || r.status === 'skipped');
    await ledger.finishRun(runId, cancelled ? 'cancelled' : ok ? 'ok' : 'failed');
    return { runId, ok, cancelled, nodes };
  } finally {
    reporter.close();
    try {
      await ledger?.close();
      if (vouched) store.vouchLedger(); // after close: its final checkpoint is part of what is recorded
    } finally { lock?.release(); }
  }
}

/** Mirrors a committed artifact into the index if a crash between ledger and index lost its line (same_as too). */
function heal(store: Store, index: CommittedIndex, a: ArtifactRow) {
  if (!index.keys.has(a.key)) {
    store.markCommitted(a.key, a.same_as);
    index.keys.add(a.key);
  }
  if (a.same_as) index.sameAs.set(a.key, a.same_as);
}

const OUTPUT_FILE: Record<string, string[]> = { table: ['data.parquet'], report: ['report.json'] };

/** Every key already committed and nothing forced: answer from the committed-keys index without opening the ledger. */
function noopFastPath(keys: Map<string, KeyedNode>, store: Store, committed: Set<string>, opts: RunOptions): RunResult | undefined {
  if (opts.force?.length || opts.from?.length || opts.only?.length || !store.ledgerVouched() || store.deadLockLeft()) return undefined;
  for (const k of keys.values()) {
    // A damaged Parquet frame sends the run down the full path, whose checks against the ledger report it.
    if (!committed.has(k.key) || !existsSync(store.artifactDir(k.key)) || retryPending(store, k.key) !== null || folderProblem(store.artifactDir(k.key), OUTPUT_FILE[k.node.op.output.kind] ?? [], MANIFEST)) return undefined;
  }
  const nodes = new Map<string, NodeResult>([...keys].map(([id, k]) => [id, { status: 'cached' as const, key: k.key }]));
  return { runId: 'noop', ok: true, cancelled: false, nodes };
}

async function schedule(d: Dag, keys: Map<string, KeyedNode>, committed: Map<string, ArtifactRow>, toRun: Set<string>, index: CommittedIndex, env: ExecEnv, opts: RunOptions) {
  const { default: PQueue } = await import('p-queue'); // not needed by a no-op rerun, which must start fast
  const queue = new PQueue({ concurrency: opts.concurrency ?? 4 });
  const limits = { gpu: 1, ...(opts.limits ?? {}) };
  const tagQueues = new Map(Object.entries(limits).map(([tag, n]) => [tag, new PQueue({ concurrency: n })]));
  const results = new Map<string, NodeResult>();
  const done = new Map<string, Promise<boolean>>();

  const forced = forcedNodes(d, opts);
  const runOne = async (k: KeyedNode): Promise<boolean> => {
    const id = k.node.id;
    const depsOk = await Promise.all(inputIds(k.node).map((dep) => done.get(dep)!));
    if (toRun.has(id) && !forced.has(id) && depsOk.every(Boolean) && !env.signal.aborted) {
      // Early cutoff: an upstream node that ran may have reproduced an earlier output, and then this node keys on it.
      const now = rekey(k, keys, index.sameAs);
      if (now.key !== k.key) {
        keys.set(id, now);
        k = now;
        const a = committed.get(k.key) ?? await env.ledger.artifact(k.key);
        if (a && existsSync(env.store.artifactDir(a.key))) {
          committed.set(k.key, a);
          heal(env.store, index, a);
          results.set(id, { status: 'cached', key: k.key });
          env.reporter.nodeEnd(id, 'cached', 'early cutoff: its inputs are the same as when it committed');
          return true;
        }
      }
    }
    if (!toRun.has(id)) {
      const cachedOk = committed.has(k.key);
      results.set(id, { status: cachedOk ? 'cached' : 'skipped', key: k.key });
      if (cachedOk) env.reporter.nodeEnd(id, 'cached');
      return cachedOk;
    }
    if (depsOk.some((ok) => !ok) || env.signal.aborted) {
      const status: NodeStatus = env.signal.aborted ? 'cancelled' : 'blocked';
      results.set(id, { status, key: k.key });
      env.reporter.nodeEnd(id, status, status === 'blocked' ? 'an input failed' : undefined);
      return false;
    }
    const tags = k.node.resources.filter((t) => tagQueues.has(t));
    const exec = () => queue.add(() => attempt(k, committed, index, env, results));
    // Nested tag queues: a gpu node holds its gpu slot while it waits for a general slot.
    const wrapped = tags.reduce<() => Promise<boolean>>((inner, tag) => () => tagQueues.get(tag)!.add(inner) as Promise<boolean>, exec as () => Promise<boolean>);
    return wrapped();
  };
  for (const k of topoOrder(d).map((n) => keys.get(n.id)!)) done.set(k.node.id, runOne(k));
  await Promise.all(done.values());
  return results;
}

async function attempt(k: KeyedNode, committed: Map<string, ArtifactRow>, index: CommittedIndex, env: ExecEnv, results: Map<string, NodeResult>): Promise<boolean> {
  const { executeNode, NodeFailure } = await import('./execute.ts');
  const id = k.node.id;
  const started = Date.now();
  if (env.signal.aborted) { results.set(id, { status: 'cancelled', key: k.key }); return false; }
  env.reporter.nodeStart(id);
  try {
    const art = await executeNode(env, k, committed);
    committed.set(k.key, art);
    index.keys.add(k.key);
    if (art.same_as) index.sameAs.set(k.key, art.same_as);
    const seconds = (Date.now() - started) / 1000;
    results.set(id, { status: 'committed', key: k.key, seconds });
    env.reporter.nodeEnd(id, 'committed', art.rows !== null ? `${art.rows} rows` : undefined);
    return true;
  } catch (e) {
    const cancelled = env.signal.aborted;
    const message = e instanceof Error ? (e instanceof NodeFailure ? e.message : `${e.name}: ${e.message}`) : String(e);
    const seconds = (Date.now() - started) / 1000;
    results.set(id, { status: cancelled ? 'cancelled' : 'failed', key: k.key, error: message, seconds });
    await env.ledger.recordExecution({
      runId: env.runId, nodeId: id, dag: env.dag, op: k.node.op.name, version: k.node.op.version, key: k.key,
      status: cancelled ? 'cancelled' : 'failed', seconds, params: k.node.params, error: message,
    }).catch(() => undefined);
    env.reporter.nodeEnd(id, cancelled ? 'cancelled' : 'failed', cancelled ? undefined : message);
    return false;
  }
}
