import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { inputIds, validateDag, DagValidationError, type Dag } from './dag.ts';
import { computeKeys, explainChange } from './keys.ts';
import type { KeyParts } from './fingerprint.ts';
import { Ledger } from '../../storage/ledger.ts';
import { assertLedgerAt, LEDGER_FIX, LedgerLost, readCommittedIndex, Store } from '../../storage/store.ts';
import { damageMessage, quickCheck } from '../../storage/integrity.ts';
import { retryPending } from './retry.ts';

export interface NodeStatusReport { node: string; op: string; key: string; state: 'fresh' | 'stale' | 'missing' | 'damaged'; why: string[] }

/**
 * Fresh/stale per node and why, from the ledger alone: a node is fresh when its current key is committed; a
 * stale node lists what differs from its last committed execution (param, code file, env, input).
 */
export async function dagStatus(d: Dag, storeDir: string): Promise<NodeStatusReport[]> {
  const problems = validateDag(d);
  if (problems.length) throw new DagValidationError(d.name, problems);
  // A lost ledger must not read as "never run" (the artifacts are there; only the record of them is gone).
  if (existsSync(storeDir)) assertLedgerAt(storeDir);
  const index = readCommittedIndex(join(storeDir, 'committed.keys'));
  const keys = computeKeys(d, index.sameAs);
  const ledger = await Ledger.openReadOnly(join(storeDir, 'ledger.duckdb'));
  try {
    const lost = await ledger.missingKeys(index.keys);
    if (lost.length) throw new LedgerLost(`ledger ${join(storeDir, 'ledger.duckdb')} lacks ${lost.length} artifact(s) that committed.keys records as committed (e.g. ${lost[0]}). ${LEDGER_FIX}`);
    const committed = await ledger.artifacts([...keys.values()].map((k) => k.key));
    const latest = await ledger.latestByNode(d.name);
    const out: NodeStatusReport[] = [];
    const state = new Map<string, NodeStatusReport['state']>();
    // Nodes the next run executes although their key is committed: those that asked to run again
    // (ctx.retryNextRun) and everything downstream of them, as the scheduler does.
    const again = new Set<string>();
    const checkpoints = { checkpointDir: (key: string) => Store.checkpointDirOf(storeDir, key) };
    for (const k of keys.values()) {
      const a = committed.get(k.key);
      const base = { node: k.node.id, op: k.node.op.name, key: k.key };
      const damaged = a && existsSync(join(storeDir, a.path)) ? quickCheck(join(storeDir, a.path), a.files) : undefined;
      if (a && damaged) {
        state.set(k.node.id, 'damaged');
        out.push({ ...base, state: 'damaged', why: [damageMessage(a, damaged)] });
        continue;
      }
      const rerunning = inputIds(k.node).filter((i) => again.has(i));
      const reason = a ? retryPending(checkpoints, k.key) : null;
      if (a && existsSync(join(storeDir, a.path)) && (reason !== null || rerunning.length)) {
        again.add(k.node.id);
        state.set(k.node.id, 'stale');
        out.push({ ...base, state: 'stale', why: reason !== null ? [`asked to run again: ${reason}`]
          : [`upstream ${rerunning.map((i) => `'${i}'`).join(', ')} runs again`] });
        continue;
      }
      if (a && existsSync(join(storeDir, a.path))) {
        state.set(k.node.id, 'fresh');
        out.push({ ...base, state: 'fresh', why: [] });
        continue;
      }
      if (a) {
        state.set(k.node.id, 'missing');
        out.push({ ...base, state: 'missing', why: [`artifact folder ${a.path} is gone; rerun recomputes it`] });
        continue;
      }
      const prev = latest.get(k.node.id);
      const upstream = (input: string) => {
        const ref = k.node.inputs[input];
        const ids = Array.isArray(ref) ? ref.map((r) => r.id) : ref ? [ref.id] : [];
        const stale = ids.filter((i) => state.get(i) !== 'fresh');
        return stale.length ? `upstream ${stale.map((s) => `'${s}'`).join(', ')} stale; reused as is if that reproduces its last output` : undefined;
      };
      const why = prev ? explainChange(prev.parts as KeyParts, k.parts, upstream) : ['never run'];
      state.set(k.node.id, 'stale');
      out.push({ ...base, state: 'stale', why });
    }
    return out;
  } finally {
    await ledger.close();
  }
}
