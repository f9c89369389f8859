import { codeFiles, nodeKey, type Fingerprint, type KeyParts } from './fingerprint.ts';
import { topoOrder, type Dag, type DagNode } from './dag.ts';

/** `reads`: the keys of the artifacts the node reads; `parts.inputs`: the keys it is keyed on (see computeKeys). */
export interface KeyedNode { node: DagNode; key: Fingerprint; parts: KeyParts; reads: KeyParts['inputs'] }

/**
 * A node's key = operator name + version + hashes of its code (module closure + declared paths) + canonical
 * params + its inputs' keys + declared env vars. Computed top-down without reading any artifact.
 *
 * Early cutoff: an input whose artifact is byte-identical to an earlier artifact of the same node (`sameAs`, from
 * the store's index) counts by that earlier key. A change that leaves an output as it was (a refactor, a filter
 * edit that keeps the same rows) therefore stops there: its consumers keep their keys and are not recomputed.
 */
export function computeKeys(d: Dag, sameAs: ReadonlyMap<string, string> = new Map()): Map<string, KeyedNode> {
  const out = new Map<string, KeyedNode>();
  for (const node of topoOrder(d)) {
    const env: KeyParts['env'] = {};
    for (const v of node.op.env ?? []) env[v] = process.env[v] ?? null;
    const parts: KeyParts = {
      op: node.op.name,
      version: node.op.version,
      code: codeFiles(node.op.module, node.op.codeDeps),
      params: node.params,
      inputs: {},
      env,
      external: node.op.fingerprint && node.params !== undefined ? node.op.fingerprint(node.params as never) : undefined,
    };
    out.set(node.id, keyed(node, parts, out, sameAs));
  }
  return out;
}

/** The node keyed again on its inputs' keys as they are now (after upstream nodes ran in this run). */
export function rekey(k: KeyedNode, keys: ReadonlyMap<string, KeyedNode>, sameAs: ReadonlyMap<string, string>): KeyedNode {
  return keyed(k.node, k.parts, keys, sameAs);
}

function keyed(node: DagNode, parts: KeyParts, keys: ReadonlyMap<string, KeyedNode>, sameAs: ReadonlyMap<string, string>): KeyedNode {
  const reads: KeyParts['inputs'] = {};
  const inputs: KeyParts['inputs'] = {};
  const canonical = (key: string) => sameAs.get(key) ?? key;
  for (const [name, ref] of Object.entries(node.inputs)) {
    if (Array.isArray(ref)) {
      const ks = ref.map((r) => keys.get(r.id)!.key);
      reads[name] = ks;
      inputs[name] = ks.map(canonical);
    } else {
      const key = ref ? keys.get(ref.id)!.key : null;
      reads[name] = key;
      inputs[name] = key === null ? null : canonical(key);
    }
  }
  const withInputs = { ...parts, inputs };
  return { node, key: nodeKey(withInputs), parts: withInputs, reads };
}

/** Human-readable reasons why `now` differs from `before` (what `agentforge status` prints). */
export function explainChange(before: KeyParts, now: KeyParts, upstreamStale: (input: string) => string | undefined): string[] {
  const why: string[] = [];
  if (before.op !== now.op) why.push(`operator changed: ${before.op} → ${now.op}`);
  if (before.version !== now.version) why.push(`operator version ${before.version} → ${now.version}`);
  const pb = (before.params ?? {}) as Record<string, unknown>;
  const pn = (now.params ?? {}) as Record<string, unknown>;
  for (const k of new Set([...Object.keys(pb), ...Object.keys(pn)])) {
    const a = JSON.stringify(pb[k]);
    const b = JSON.stringify(pn[k]);
    if (a !== b) why.push(`param ${k}: ${a ?? '(unset)'} → ${b ?? '(unset)'}`);
  }
  for (const f of new Set([...Object.keys(before.code), ...Object.keys(now.code)])) {
    if (!(f in before.code)) why.push(`code: ${f} added to the operator's imports`);
    else if (!(f in now.code)) why.push(`code: ${f} no longer imported`);
    else if (before.code[f] !== now.code[f]) why.push(`code: ${f} changed`);
  }
  for (const k of new Set([...Object.keys(before.env), ...Object.keys(now.env)])) {
    if (before.env[k] !== now.env[k]) why.push(`env ${k} changed`);
  }
  if (JSON.stringify(before.external) !== JSON.stringify(now.external)) why.push('external files changed (the operator\'s fingerprint of what it reads from outside the store)');
  for (const k of new Set([...Object.keys(before.inputs), ...Object.keys(now.inputs)])) {
    if (JSON.stringify(before.inputs[k]) !== JSON.stringify(now.inputs[k])) {
      why.push(`input ${k} changed${upstreamStale(k) ? ` (${upstreamStale(k)})` : ' (upstream recomputed)'}`);
    }
  }
  return why.length ? why : ['key differs (no single part explains it)'];
}
