import { z } from 'zod';
import type { Task } from '../../schemas/task.ts';
import type { ToolSpec } from '../../schemas/tool.ts';
import type { EpisodeContext, ToolDef, ToolErrorKind, ToolResult, World } from './world.ts';
import { hashValue } from './hash.ts';
import type { Rng } from '../engine/rng.ts';

/*
 * The shared machinery of the built-in worlds: a world is a record (name, policy, typed tools, a seeded database,
 * task kinds); `BaseWorld` turns it into the synchronous World API. Tools check every precondition before they
 * mutate, so a failed call leaves the state untouched without copying it.
 */

/** Thrown by a tool's run() for an expected failure; the world turns it into a structured ToolError. */
export class ToolFailure extends Error {
  constructor(readonly kind: Exclude<ToolErrorKind, 'unknown_tool' | 'invalid_args' | 'internal'>, message: string) {
    super(message);
    this.name = 'ToolFailure';
  }
}
export const precondition = (msg: string): never => { throw new ToolFailure('precondition', msg); };
export const policyViolation = (msg: string): never => { throw new ToolFailure('policy', msg); };
/** A record's own entry, never an inherited one: a model asking for order "__proto__" or tool "constructor" finds nothing. */
export const own = <T>(record: Readonly<Record<string, T>>, key: string): T | undefined => (Object.hasOwn(record, key) ? record[key] : undefined);

export const notFound = (msg: string): never => { throw new ToolFailure('not_found', msg); };

/** A built-in tool: `confirm` tools need an explicit "yes" from the user right before the call (consumed by it). */
export interface WorldTool<S> extends ToolDef<z.ZodType, S> {
  confirm: boolean;
}

export function tool<S, A extends z.ZodObject>(def: {
  name: string;
  description: string;
  args: A;
  mutates?: boolean;
  confirm?: boolean;
  run(state: S, args: z.infer<A>, ctx: EpisodeContext): unknown;
}): WorldTool<S> {
  return { mutates: false, confirm: false, ...def } as WorldTool<S>;
}

/** One gold tool call. */
export interface Action { name: string; arguments: Record<string, unknown> }

/** What a task kind proposes; makeTasks executes the actions to derive the goal hash and the answer. */
export interface TaskDraft {
  instruction: string;
  actions: Action[];
  /** Facts left out of the instruction; the user reveals them when asked (key like "order_id"). */
  hidden?: Record<string, string>;
  /** For refusal tasks: the forbidden call; makeTasks checks the world really answers it with a policy error. */
  forbidden?: Action;
  /** Final answer text and the strings it must contain, computed from the gold results. */
  answer(results: any[]): { text: string; outputs: string[] };
  tags?: string[];
  /** The instruction template's variant within its kind (default: "ask" when a fact is hidden, else none). */
  variant?: string;
}
export interface TaskKind<S> {
  name: string;
  make(state: S, rng: Rng): TaskDraft | null;
}

export interface WorldDef<S> {
  name: string;
  policy: string;
  tools: WorldTool<S>[];
  /** Callable but irrelevant tools, offered only to tasks tagged "distractors". */
  distractors: WorldTool<S>[];
  init(seed: number): S;
  kinds: TaskKind<S>[];
  /**
   * Kinds whose instruction templates never occur in training: only the held-out split's probe draws them (see
   * tasks.ts), so "held-out success" also measures templates and task lengths the model was not trained on.
   */
  heldoutKinds?: TaskKind<S>[];
  /** Text of the refusal the scripted teacher gives, keyed by task kind name (default: generic). */
  refusal?: string;
}

export function errorResult(kind: ToolErrorKind, message: string): ToolResult {
  return { ok: false, kind, message };
}

/** The exact text the agent loop shows the model for a result; verification compares replayed results with it. */
export function renderToolResult(r: ToolResult): string {
  return r.ok ? JSON.stringify(r.result ?? null) : JSON.stringify({ error: r.kind, message: r.message });
}

const specCache = new WeakMap<WorldTool<unknown>, ToolSpec>();
function specOf<S>(t: WorldTool<S>): ToolSpec {
  let s = specCache.get(t as WorldTool<unknown>);
  if (!s) {
    const { $schema: _drop, ...parameters } = z.toJSONSchema(t.args) as Record<string, unknown>;
    s = { type: 'function', function: { name: t.name, description: t.description, parameters } };
    specCache.set(t as WorldTool<unknown>, s);
  }
  return s;
}

function describeIssue(tool: string, err: z.ZodError): string {
  const i = err.issues[0];
  const path = i.path.length ? i.path.join('.') : '(arguments)';
  return `invalid arguments for ${tool}: ${path}: ${i.message}`;
}

export class BaseWorld<S> implements World<S> {
  readonly name: string;
  readonly policy: string;
  readonly tools: ReadonlyArray<WorldTool<S>>;
  episode: EpisodeContext = { confirmed: false };
  private s: S;
  private callable = new Map<string, WorldTool<S>>();
  private offered: WorldTool<S>[] = [];

  constructor(readonly def: WorldDef<S>) {
    this.name = def.name;
    this.policy = def.policy;
    this.tools = def.tools;
    this.s = def.init(0);
    this.offer(false);
  }

  private offer(withDistractors: boolean): void {
    this.offered = withDistractors ? [...this.def.tools, ...this.def.distractors] : [...this.def.tools];
    this.callable = new Map(this.offered.map((t) => [t.name, t]));
  }

  toolSpecs(): ToolSpec[] {
    return this.offered.map(specOf);
  }

  reset(task: Pick<Task, 'seed' | 'tags'>): void {
    this.s = this.def.init(task.seed);
    this.episode = { confirmed: false };
    this.offer(task.tags?.includes('distractors') ?? false);
  }

  call(name: string, args: unknown): ToolResult {
    const t = this.callable.get(name);
    if (!t) return errorResult('unknown_tool', `unknown tool "${name}"`);
    const parsed = t.args.safeParse(args ?? {});
    if (!parsed.success) return errorResult('invalid_args', describeIssue(name, parsed.error));
    if (t.confirm && !this.episode.confirmed) {
      return errorResult('policy', `${name} needs the user's explicit confirmation (ask and wait for "yes") first`);
    }
    try {
      const result = t.run(this.s, parsed.data, this.episode);
      if (t.confirm) this.episode.confirmed = false;
      return { ok: true, result };
    } catch (e) {
      if (e instanceof ToolFailure) return errorResult(e.kind, e.message);
      return errorResult('internal', `internal error in ${name}: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  stateHash(): string {
    return hashValue(this.s);
  }

  state(): S {
    return this.s;
  }
}

/* ---- conversation conventions shared by the loop, the teachers, the user simulator and the verifier ---- */

const CONFIRM = /^\s*(yes|yep|y|confirm(ed)?|i confirm|go ahead|proceed)\b/i;
/** A user turn that starts with yes/confirm authorises the next confirmation-gated tool call. */
export function isConfirmation(text: string): boolean {
  return CONFIRM.test(text);
}
/** Applies a user turn to the episode context (the one place confirmation is decided). */
export function observeUserTurn(world: Pick<World, 'episode'>, text: string): void {
  world.episode.confirmed = isConfirmation(text);
}
const REFUSAL = /\b(cannot|can't|can not|unable to|not able to|not allowed|not permitted)\b/i;
export function isRefusal(text: string): boolean {
  return REFUSAL.test(text);
}
