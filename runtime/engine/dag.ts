import type { z } from 'zod';
import { isOperator, type AnyOperator, type ArtifactSpec, type InputSpec, type ManySpec, type OptionalSpec, type Operator } from './operator.ts';
import { schemaSignature } from '../../storage/codec.ts';
import { LEDGER_TABLES, LONE_SURROGATE } from '../../storage/store.ts';

/*
 * A DAG module: `export default dag('name', (d) => { const a = d.node('a', op, params, inputs) ... })`.
 * Building never throws on a user mistake: problems are collected and reported all at once by validateDag,
 * each naming the node and the fix.
 */

export interface NodeRef<O extends ArtifactSpec = ArtifactSpec> { readonly __ref: true; readonly id: string; readonly spec?: O }

type RefFor<I> =
  I extends ManySpec<infer A> ? NodeRef<A>[] :
  I extends OptionalSpec<infer A> ? NodeRef<A> | undefined :
  I extends ArtifactSpec ? NodeRef<I> : never;
type OptionalKeys<I> = { [K in keyof I]: I[K] extends OptionalSpec ? K : never }[keyof I];
/** An optional input may be left out of the refs (unwired = absent, as validateDag already treats it). */
export type InputRefs<I extends Record<string, InputSpec>> =
  { [K in Exclude<keyof I, OptionalKeys<I>>]: RefFor<I[K]> } & { [K in OptionalKeys<I>]?: RefFor<I[K]> };

export interface NodeOptions {
  /** Extra resource tags on top of the operator's own. */
  resources?: string[];
}

export interface DagNode {
  id: string;
  op: AnyOperator;
  rawParams: unknown;
  params: unknown;
  inputs: Record<string, NodeRef | NodeRef[] | undefined>;
  resources: string[];
}

export interface Dag {
  readonly __dag: true;
  name: string;
  description?: string;
  nodes: DagNode[];
  /** Problems found while building (bad params, bad ids); validateDag adds the graph-level ones. */
  buildErrors: string[];
}

export interface DagBuilder {
  node<P extends z.ZodObject, I extends Record<string, InputSpec>, O extends ArtifactSpec>(
    id: string, op: Operator<P, I, O>, params?: z.input<P>, inputs?: InputRefs<I>, opts?: NodeOptions,
  ): NodeRef<O>;
  /** A reference to a node declared elsewhere in this DAG (forward references make cycles expressible, and reportable). */
  ref<O extends ArtifactSpec = ArtifactSpec>(id: string): NodeRef<O>;
}

const ID = /^[a-z][a-z0-9_]*$/;
/** Names `agentforge sql` defines besides node views; a node id equal to one would shadow it or fail to load. */
const RESERVED_IDS: ReadonlySet<string> = new Set([...LEDGER_TABLES, 'ledger']);

/** Why an id cannot be a node id (it would collide with a view `agentforge sql` derives), or undefined. */
export function reservedIdProblem(id: string): string | undefined {
  if (RESERVED_IDS.has(id)) return `'${id}' is the name of a ledger view in \`agentforge sql\` (reserved: ${[...RESERVED_IDS].join(', ')}) — rename the node, e.g. '${id}_node'`;
  if (id.endsWith('_all')) return `ids ending in '_all' are reserved: node '${id.slice(0, -4)}' gets a view '${id}' of all its versions — rename it, e.g. '${id.slice(0, -4)}_every'`;
  if (id.includes('__')) return `ids may not contain '__': \`agentforge sql\` names views '<dag>__<node>' — use a single '_'`;
  return undefined;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** The known key closest to a misspelt one, if any is close enough to be a plausible intent. */
export function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = levenshtein(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) { best = k; bestD = d; }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

type Def = { type?: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType>; catchall?: z.ZodType; element?: z.ZodType; options?: z.ZodType[] };
const defOf = (t: unknown): Def => ((t as { _zod?: { def?: Def } })?._zod?.def ?? {});

/**
 * Keys a params value holds that its schema does not declare (zod objects strip them silently, so a misspelt
 * `{ nn: 3 }` would run with the default). Walks nested objects and arrays; objects with a catchall (`.loose()`,
 * `.catchall()`) take any key.
 */
function unknownKeys(schema: z.ZodType, value: unknown, path: string[] = []): { path: string[]; key: string; known: string[] }[] {
  let def = defOf(schema);
  while (def.innerType && def.type !== 'object') def = defOf(def.innerType);
  if (value === null || typeof value !== 'object') return [];
  if (def.type === 'array' && def.element && Array.isArray(value)) return value.flatMap((v, i) => unknownKeys(def.element!, v, [...path, String(i)]));
  if (def.type !== 'object' || !def.shape || Array.isArray(value)) return [];
  const catchall = def.catchall ? defOf(def.catchall).type : undefined;
  const known = Object.keys(def.shape);
  const out: { path: string[]; key: string; known: string[] }[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (k in def.shape) out.push(...unknownKeys(def.shape[k], v, [...path, k]));
    else if (catchall === undefined || catchall === 'never') out.push({ path, key: k, known });
  }
  return out;
}

/** The first string in a params value (keys included) that holds a lone surrogate, as a path, or undefined. */
function loneSurrogateAt(v: unknown, path: string): { path: string; index: number } | undefined {
  if (typeof v === 'string') { const m = LONE_SURROGATE.exec(v); return m ? { path, index: m.index } : undefined; }
  if (Array.isArray(v)) { for (let i = 0; i < v.length; i++) { const r = loneSurrogateAt(v[i], `${path}[${i}]`); if (r) return r; } return undefined; }
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      const here = path ? `${path}.${k}` : k;
      const m = LONE_SURROGATE.exec(k);
      if (m) return { path: `${here} (in the key)`, index: m.index };
      const r = loneSurrogateAt(x, here);
      if (r) return r;
    }
  }
  return undefined;
}

export function dag(name: string, build: (d: DagBuilder) => void, opts: { description?: string } = {}): Dag {
  const nodes: DagNode[] = [];
  const buildErrors: string[] = [];
  const builder: DagBuilder = {
    node(id, op, params, inputs, nodeOpts) {
      if (!isOperator(op)) {
        buildErrors.push(`node '${id}': the second argument is not an operator (declare it with operator({...}) and import it)`);
        return { __ref: true, id };
      }
      const where = `node '${id}' (${op.name})`;
      const unknown = unknownKeys(op.params, params ?? {});
      for (const u of unknown) {
        const near = closest(u.key, u.known);
        const at = [...u.path, u.key].join('.');
        buildErrors.push(`${where}: unknown param '${at}'${near ? ` — did you mean '${[...u.path, near].join('.')}'?` : ''} (${op.name} takes: ${u.known.join(', ') || 'no params'})`);
      }
      const bad = loneSurrogateAt(params ?? {}, '');
      if (bad) {
        buildErrors.push(`${where}: param ${bad.path} holds a lone UTF-16 surrogate at index ${bad.index}, which no UTF-8 store can keep — fix the string (a surrogate must be paired, e.g. an emoji written whole)`);
      }
      const parsed = op.params.safeParse(params ?? {});
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          if (issue.code === 'unrecognized_keys' && unknown.length) continue; // reported above, with the closest key
          buildErrors.push(`${where}: param ${issue.path.join('.') || '(root)'}: ${issue.message} — fix the params passed to d.node('${id}', …)`);
        }
      }
      const ok = parsed.success && !unknown.length && !bad;
      nodes.push({
        id, op, rawParams: params ?? {}, params: ok ? parsed.data : undefined,
        inputs: (inputs ?? {}) as DagNode['inputs'],
        resources: [...new Set([...(op.resources ?? []), ...(nodeOpts?.resources ?? [])])],
      });
      return { __ref: true, id, spec: op.output };
    },
    ref(id) { return { __ref: true, id }; },
  };
  build(builder);
  return { __dag: true, name, description: opts.description, nodes, buildErrors };
}

export function isDag(x: unknown): x is Dag {
  return typeof x === 'object' && x !== null && (x as Dag).__dag === true;
}

export class DagValidationError extends Error {
  constructor(readonly dagName: string, readonly problems: string[]) {
    super(`DAG '${dagName}' is invalid (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  - ${problems.join('\n  - ')}`);
    this.name = 'DagValidationError';
  }
}

const describe = (s: ArtifactSpec) => (s.kind === 'table' || s.kind === 'report' ? `${s.kind}(${s.label})` : `${s.kind}()`);

function checkEdge(node: DagNode, input: string, want: ArtifactSpec, from: DagNode): string[] {
  const have = from.op.output as ArtifactSpec;
  const where = `node '${node.id}' input '${input}'`;
  if (have.kind !== want.kind) {
    return [`${where} expects ${describe(want)} but node '${from.id}' (${from.op.name}) produces ${describe(have)} — wire a node that outputs ${want.kind}`];
  }
  if (want.kind !== 'table' || have.kind !== 'table') return [];
  const need = schemaSignature(want.schema);
  const got = schemaSignature(have.schema);
  const out: string[] = [];
  for (const [col, type] of Object.entries(need)) {
    if (!(col in got)) out.push(`${where}: column '${col}' is required but node '${from.id}' (${from.op.name}) does not produce it — change the upstream schema or the input spec`);
    else if (got[col] !== type) out.push(`${where}: column '${col}' is ${type} in the input schema but ${got[col]} in node '${from.id}''s output`);
  }
  return out;
}

/** Every problem in the definition, or [] when it can run. */
export function validateDag(d: Dag): string[] {
  const problems = [...d.buildErrors];
  if (typeof d.name !== 'string' || !d.name || LONE_SURROGATE.test(d.name)) problems.push(`DAG name ${JSON.stringify(d.name)}: give the DAG a non-empty name of well-formed text`);
  const byId = new Map<string, DagNode>();
  for (const n of d.nodes) {
    if (!ID.test(n.id)) problems.push(`node '${n.id}': ids are lower_snake_case (letters, digits, _), e.g. 'verify_sft'`);
    else if (reservedIdProblem(n.id)) problems.push(`node '${n.id}': ${reservedIdProblem(n.id)}`);
    if (byId.has(n.id)) problems.push(`node '${n.id}' is declared twice (operators ${byId.get(n.id)!.op.name} and ${n.op.name}) — give each node a unique id`);
    else byId.set(n.id, n);
  }
  for (const n of d.nodes) {
    const specs = n.op.inputs as Record<string, InputSpec>;
    for (const name of Object.keys(n.inputs)) {
      if (!(name in specs)) problems.push(`node '${n.id}': unknown input '${name}'; ${n.op.name} takes: ${Object.keys(specs).join(', ') || '(no inputs)'}`);
    }
    for (const [name, spec] of Object.entries(specs)) {
      const wired = n.inputs[name];
      const base = spec.kind === 'many' || spec.kind === 'optional' ? spec.of : spec;
      if (wired === undefined) {
        if (spec.kind !== 'optional') problems.push(`node '${n.id}': input '${name}' (${describe(base)}) is not wired — pass { ${name}: <node ref> } to d.node('${n.id}', …)`);
        continue;
      }
      const refs = Array.isArray(wired) ? wired : [wired];
      if (Array.isArray(wired) !== (spec.kind === 'many')) {
        problems.push(`node '${n.id}': input '${name}' takes ${spec.kind === 'many' ? 'a list of refs' : 'one ref'}`);
        continue;
      }
      for (const ref of refs) {
        const from = byId.get(ref?.id);
        if (!from) { problems.push(`node '${n.id}': input '${name}' refers to '${ref?.id}', which is not a node of this DAG`); continue; }
        problems.push(...checkEdge(n, name, base, from));
      }
    }
  }
  const cycle = findCycle(d.nodes, byId);
  if (cycle) problems.push(`cycle: ${cycle.join(' → ')} — a node cannot depend on its own output`);
  return problems;
}

export function inputIds(n: DagNode): string[] {
  const out: string[] = [];
  for (const v of Object.values(n.inputs)) {
    if (Array.isArray(v)) out.push(...v.map((r) => r.id));
    else if (v) out.push(v.id);
  }
  return out;
}

function findCycle(nodes: DagNode[], byId: Map<string, DagNode>): string[] | undefined {
  const state = new Map<string, 1 | 2>();
  const path: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 2) return undefined;
    if (state.get(id) === 1) return [...path.slice(path.indexOf(id)), id];
    state.set(id, 1);
    path.push(id);
    const n = byId.get(id);
    for (const dep of n ? inputIds(n) : []) {
      if (!byId.has(dep)) continue;
      const c = visit(dep);
      if (c) return c;
    }
    path.pop();
    state.set(id, 2);
    return undefined;
  };
  for (const n of nodes) {
    const c = visit(n.id);
    if (c) return c;
  }
  return undefined;
}

/** Nodes in dependency order (assumes a validated DAG). */
export function topoOrder(d: Dag): DagNode[] {
  const byId = new Map(d.nodes.map((n) => [n.id, n]));
  const done = new Set<string>();
  const out: DagNode[] = [];
  const visit = (n: DagNode) => {
    if (done.has(n.id)) return;
    done.add(n.id);
    for (const dep of inputIds(n)) visit(byId.get(dep)!);
    out.push(n);
  };
  d.nodes.forEach(visit);
  return out;
}

export function descendants(d: Dag, ids: string[]): Set<string> {
  const out = new Set(ids);
  let grew = true;
  while (grew) {
    grew = false;
    for (const n of d.nodes) {
      if (!out.has(n.id) && inputIds(n).some((i) => out.has(i))) { out.add(n.id); grew = true; }
    }
  }
  return out;
}
