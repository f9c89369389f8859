import { codeFiles, nodeKey, type Fingerprint, type KeyParts } from './fingerprint.ts';
import { topoOrder, type Dag, type DagNode } from './dag.ts';

export interface KeyedNode { node: DagNode; key: Fingerprint; parts: KeyParts }

/**
 * A node's key = operator name + version + hashes of its code (module closure + declared paths) + canonical
 * params + its inputs' keys + declared env vars. Computed top-down without reading any artifact.
 */
export function computeKeys(d: Dag): Map<string, KeyedNode> {
  const out = new Map<string, KeyedNode>();
  for (const node of topoOrder(d)) {
    const inputs: KeyParts['inputs'] = {};
    for (const [name, ref] of Object.entries(node.inputs)) {
      if (Array.isArray(ref)) inputs[name] = ref.map((r) => out.get(r.id)!.key);
      else inputs[name] = ref ? out.get(ref.id)!.key : null;
    }
    const env: KeyParts['env'] = {};
    for (const v of node.op.env ?? []) env[v] = process.env[v] ?? null;
    const parts: KeyParts = {
      op: node.op.name,
      version: node.op.version,
      code: codeFiles(node.op.module, node.op.codeDeps),
      params: node.params,
      inputs,
      env,
      external: node.op.fingerprint && node.params !== undefined ? node.op.fingerprint(node.params as never) : undefined,
    };
    out.set(node.id, { node, key: nodeKey(parts), parts });
  }
  return out;
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
