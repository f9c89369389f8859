import { z } from 'zod';
import { fileURLToPath } from 'node:url';

/*
 * Operators are declared once; every type their `run` sees is inferred from the declaration.
 * An artifact spec says what a node produces or consumes: a table of zod records (Parquet), a model directory
 * (Hugging Face layout), a file set, or a report (one JSON document validated by a zod schema).
 */

export interface TableSpec<S extends z.ZodObject = z.ZodObject> { kind: 'table'; schema: S; label: string }
export interface ModelSpec { kind: 'model' }
export interface FilesSpec { kind: 'files' }
export interface ReportSpec<S extends z.ZodType = z.ZodType> { kind: 'report'; schema: S; label: string }
export type ArtifactSpec = TableSpec | ModelSpec | FilesSpec | ReportSpec;
/** Several artifacts of one kind fed to one input (e.g. the experts of a merge). */
export interface ManySpec<A extends ArtifactSpec = ArtifactSpec> { kind: 'many'; of: A }
/** An input a DAG may leave unwired. */
export interface OptionalSpec<A extends ArtifactSpec = ArtifactSpec> { kind: 'optional'; of: A }
export type InputSpec = ArtifactSpec | ManySpec | OptionalSpec;

export const table = <S extends z.ZodObject>(schema: S, label = 'table'): TableSpec<S> => ({ kind: 'table', schema, label });
export const model = (): ModelSpec => ({ kind: 'model' });
export const files = (): FilesSpec => ({ kind: 'files' });
export const report = <S extends z.ZodType>(schema: S, label = 'report'): ReportSpec<S> => ({ kind: 'report', schema, label });
export const many = <A extends ArtifactSpec>(of: A): ManySpec<A> => ({ kind: 'many', of });
export const optional = <A extends ArtifactSpec>(of: A): OptionalSpec<A> => ({ kind: 'optional', of });

/* ---- handles an operator's run() receives ---- */

export interface ArtifactRef { node: string; key: string }

export interface TableInput<T> extends ArtifactRef {
  /** Parquet files of the table, in order. */
  files: string[];
  count(): Promise<number>;
  /** Rows in stored order, decoded and typed (JSON columns parsed, nulls of optional fields dropped). */
  rows(): AsyncIterable<T>;
  batches(size?: number): AsyncIterable<T[]>;
  all(): Promise<T[]>;
  /** Runs a read-only query where `{table}` names this table; rows come back as plain JS values. */
  query<R = Record<string, unknown>>(sql: string): Promise<R[]>;
}
export interface DirInput extends ArtifactRef { dir: string }
export interface ReportInput<T> extends ArtifactRef { value: T }

export interface TableOutput<I> {
  /** Appends rows (validated against the schema: a bad row fails the node with its index and zod path). */
  write(rows: I[]): Promise<void>;
  /**
   * Writes one durable, named batch. A killed run that is rerun keeps the batches already written, so an
   * operator resumes by skipping ids for which `hasBatch` is true. Final row order is batch ids in the order
   * given to `batchOrder` (default: order of first write across runs, sorted lexicographically on resume).
   */
  writeBatch(id: string, rows: I[]): Promise<void>;
  hasBatch(id: string): boolean;
  /** Ids of batches kept from an earlier, interrupted attempt of this same key. */
  readonly resumedBatches: ReadonlySet<string>;
}
export interface DirOutput {
  /** Write the artifact's files here; it is committed atomically when run() resolves. */
  dir: string;
}

type Handle<A> =
  A extends TableSpec<infer S> ? TableInput<z.output<S>> :
  A extends ReportSpec<infer S> ? ReportInput<z.output<S>> :
  A extends ModelSpec | FilesSpec ? DirInput : never;
export type InputHandle<I> =
  I extends ManySpec<infer A> ? Handle<A>[] :
  I extends OptionalSpec<infer A> ? Handle<A> | undefined :
  Handle<I>;
export type OutputHandle<O> =
  O extends TableSpec<infer S> ? TableOutput<z.input<S>> :
  O extends ReportSpec ? Record<string, never> :
  DirOutput;
export type RunResult<O> = O extends ReportSpec<infer S> ? z.input<S> : void;

export interface Progress {
  /** Declares the amount of work (e.g. 500 trajectories). */
  total(n: number, unit?: string): void;
  tick(n?: number): void;
  set(done: number): void;
}

export interface OperatorContext {
  nodeId: string;
  runId: string;
  key: string;
  signal: AbortSignal;
  progress: Progress;
  /** Streams a metric row into the ledger's `metrics` table. */
  metric(name: string, value: number, step?: number): void;
  log(message: string): void;
  /** Survives a killed run of the same key; deleted when the node commits. */
  checkpointDir: string;
  /** Scratch space, deleted after the node ends. */
  tmpDir: string;
  storeDir: string;
  /** Values of the env vars the operator declared (part of its key). */
  env: Record<string, string | undefined>;
  /**
   * Commit this output, but run the node again on the next `run` (durable batches resume; its descendants rerun
   * after it): for an output that is usable but incomplete, e.g. rows that failed on a flaky endpoint.
   */
  retryNextRun?(reason: string): void;
}

export interface RunArgs<P extends z.ZodObject, I extends Record<string, InputSpec>, O extends ArtifactSpec> {
  params: z.output<P>;
  inputs: { [K in keyof I]: InputHandle<I[K]> };
  out: OutputHandle<O>;
  ctx: OperatorContext;
}

export interface OperatorDecl<P extends z.ZodObject, I extends Record<string, InputSpec>, O extends ArtifactSpec> {
  /** kebab-case, unique among operators. */
  name: string;
  /** Bump when behaviour changes so incremental reruns recompute. */
  version: number;
  description?: string;
  params: P;
  inputs: I;
  output: O;
  /** Resource tags; the scheduler runs at most `limits[tag]` (gpu: 1) tagged nodes at once. */
  resources?: string[];
  /** Env vars whose values enter the cache key and are handed to ctx.env. */
  env?: string[];
  /** Extra files or folders (relative to the repo root) whose contents enter the cache key, e.g. the Python node. */
  codeDeps?: string[];
  /**
   * Key material from outside the store, computed before running (e.g. sizes and mtimes of a local model dir a
   * node copies in). Must be cheap: it runs on every no-op rerun.
   */
  fingerprint?(params: z.output<P>): unknown;
  run(args: RunArgs<P, I, O>): Promise<RunResult<O>>;
}

export interface Operator<P extends z.ZodObject = z.ZodObject, I extends Record<string, InputSpec> = Record<string, InputSpec>, O extends ArtifactSpec = ArtifactSpec>
  extends OperatorDecl<P, I, O> {
  /** Absolute path of the module that declared the operator (its code enters the cache key). */
  module: string;
  readonly __operator: true;
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyOperator = Operator<any, any, any>;

const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

export class OperatorDefinitionError extends Error {
  constructor(where: string, problems: string[]) {
    super(`invalid operator ${where}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'OperatorDefinitionError';
  }
}

/** Declares an operator; a malformed declaration fails at import with every problem listed. */
export function operator<P extends z.ZodObject, I extends Record<string, InputSpec>, O extends ArtifactSpec>(
  decl: OperatorDecl<P, I, O>,
): Operator<P, I, O> {
  const module = callerModule();
  const problems: string[] = [];
  if (typeof decl.name !== 'string' || !NAME.test(decl.name)) problems.push(`name ${JSON.stringify(decl.name)} must be kebab-case, e.g. "filter-trajectories"`);
  if (!Number.isInteger(decl.version) || decl.version < 1) problems.push(`version must be a positive integer (got ${String(decl.version)}); bump it when behaviour changes`);
  if (!(decl.params instanceof z.ZodObject)) problems.push('params must be a z.object({...}) (use z.object({}) for none)');
  if (!decl.output || !['table', 'model', 'files', 'report'].includes(decl.output.kind)) problems.push('output must be table(schema), model(), files() or report(schema)');
  if (decl.output?.kind === 'table' && !(decl.output.schema instanceof z.ZodObject)) problems.push('a table output needs a z.object schema');
  for (const [k, v] of Object.entries(decl.inputs ?? {})) {
    const base = v && (v.kind === 'many' || v.kind === 'optional') ? v.of : v;
    if (!base || !['table', 'model', 'files', 'report'].includes(base.kind)) problems.push(`input "${k}" must be table(), model(), files(), report(), many() or optional()`);
  }
  if (typeof decl.run !== 'function') problems.push('run must be an async function');
  if (problems.length) throw new OperatorDefinitionError(`"${String(decl.name)}" (${module})`, problems);
  return Object.freeze({ ...decl, module, __operator: true as const });
}

export function isOperator(x: unknown): x is AnyOperator {
  return typeof x === 'object' && x !== null && (x as { __operator?: unknown }).__operator === true;
}

/** Set by bin/agentforge.mjs when the CLI runs from a bundle (runtime/engine/cli/bundle.mjs): chunk line → source file. */
const BUNDLE = Symbol.for('agentforge.bundle');
type SourceAt = (file: string, line: number, col: number) => string | null | undefined;

/**
 * The file that called operator(): the first stack frame outside this module. In a bundle every frame is in a
 * chunk; the bundle's line table names the source file (null: esbuild's own helper code, skipped).
 */
function callerModule(): string {
  const stack = new Error().stack?.split('\n') ?? [];
  const self = fileURLToPath(import.meta.url);
  const sourceAt = (globalThis as { [BUNDLE]?: { sourceAt: SourceAt } })[BUNDLE]?.sourceAt;
  for (const line of stack.slice(1)) {
    const m = line.match(/\(?((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?\s*$/);
    if (!m) continue;
    let file = m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1];
    if (sourceAt) {
      const src = sourceAt(file, Number(m[2]), Number(m[3]));
      if (src === null) continue;
      if (src !== undefined) file = src;
    }
    if (file !== self) return file;
  }
  throw new Error('operator(): could not determine the declaring module from the stack');
}
