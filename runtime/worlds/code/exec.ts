import { z } from 'zod';
import type { Task, Split } from '../../../schemas/task.ts';
import type { ToolSpec } from '../../../schemas/tool.ts';
import type { Trajectory, Verdict } from '../../../schemas/trajectory.ts';
import type { EpisodeContext, ToolErrorKind, ToolResult, World } from '../world.ts';
import { errorResult, ToolFailure } from '../base.ts';
import { hashValue } from '../hash.ts';
import { assertSandboxAvailable, runSandboxed, SandboxRefusedError, type Limits, type SandboxResult, type SandboxSpec } from '../../sandbox/sandbox.ts';
import type { SandboxRunner } from '../../sandbox/harness.ts';

/*
 * Worlds whose tools run programs (code, repo): the same record shape as the tool worlds (typed tools, a task
 * generator, a verifier) but a tool may be asynchronous (a sandbox run), so the loop calls `callAsync`; and the
 * verdict runs hidden tests in the sandbox, so verification is asynchronous too (verifyTrajectoryAsync in
 * verify.ts dispatches here by world name). A program's misbehaviour (never ends, floods output, forks, allocates
 * without bound) is a tool result or a failed verdict with the sandbox's reason, never a thrown error.
 */

export interface ExecTool<S> {
  name: string;
  description: string;
  args: z.ZodObject;
  mutates: boolean;
  run(state: S, args: any, ctx: ExecContext): unknown;
}

export interface ExecContext { signal?: AbortSignal }

export interface ExecVerdict extends Verdict {
  /** Share of hidden tests passed (the outcome reward of these worlds), 0 when none ran. */
  score: number;
}

export interface ExecWorldDef<S> {
  name: string;
  policy: string;
  tools: ExecTool<S>[];
  init(task: Pick<Task, 'id' | 'seed' | 'tags'>): S;
  /** What stateHash covers. */
  snapshot(state: S): unknown;
  makeTasks(opts: ExecTaskOptions): Promise<Task[]>;
  verify(traj: Trajectory, task: Task, signal?: AbortSignal): Promise<ExecVerdict>;
  /** The episode's change as a unified diff (the repo world), stored in Trajectory.patch. */
  patch?(state: S): string;
  /** The episode is over (the repo world after submit, as SWE-style harnesses end it). */
  done?(state: S): boolean;
}

export interface ExecTaskOptions {
  seed: number; n: number; split?: Split; heldoutFraction?: number;
  /** Told why each rejected draft was dropped (the repo world checks every repository before it becomes a task). */
  onReject?(why: string): void;
}

/** How these worlds reach the sandbox: runSandboxed, or a warm pool (runtime/sandbox/pool.ts) set by the caller. */
let runner: SandboxRunner = runSandboxed;
export function setSandboxRunner(r: SandboxRunner | null): void { runner = r ?? runSandboxed; }
export const sandboxRun = (spec: SandboxSpec): Promise<SandboxResult> => runner(spec);
export const currentRunner = (): SandboxRunner => runner;

/** Limits of a tool's program (run_python, run_tests): small, so a bad program costs one short failed call. */
export const TOOL_LIMITS: Partial<Limits> = { wallMs: 6_000, cpuSeconds: 3, memoryBytes: 512 << 20, outputBytes: 64 << 10, processes: 16, fileSizeBytes: 1 << 20 };
/** Limits of a verdict's run (hidden tests). */
export const VERIFY_LIMITS: Partial<Limits> = { wallMs: 12_000, cpuSeconds: 6, memoryBytes: 512 << 20, outputBytes: 64 << 10, processes: 16, fileSizeBytes: 1 << 20 };

const specs = new WeakMap<object, ToolSpec>();
function specOf(t: ExecTool<unknown>): ToolSpec {
  let s = specs.get(t);
  if (!s) {
    const { $schema: _drop, ...parameters } = z.toJSONSchema(t.args) as Record<string, unknown>;
    specs.set(t, (s = { type: 'function', function: { name: t.name, description: t.description, parameters } }));
  }
  return s;
}

export class ExecWorld<S> implements World<S> {
  readonly name: string;
  readonly policy: string;
  readonly tools: ReadonlyArray<ExecTool<S> & { run(state: S, args: any, ctx: EpisodeContext): unknown }>;
  episode: EpisodeContext = { confirmed: false };
  private s: S | undefined;

  constructor(readonly def: ExecWorldDef<S>) {
    // a machine that cannot isolate model-written code fails here, naming the risk and the opt-in, before any episode
    if (runner === runSandboxed) assertSandboxAvailable();
    this.name = def.name;
    this.policy = def.policy;
    this.tools = def.tools;
  }

  toolSpecs(): ToolSpec[] {
    return this.def.tools.map((t) => specOf(t as ExecTool<unknown>));
  }

  reset(task: Task): void {
    this.s = this.def.init(task);
    this.episode = { confirmed: false };
  }

  private prepare(name: string, args: unknown): { tool: ExecTool<S>; args: unknown } | ToolResult {
    const t = this.def.tools.find((x) => x.name === name);
    if (!t) return errorResult('unknown_tool', `unknown tool "${name}"`);
    if (this.s === undefined) return errorResult('internal', `${this.name}: reset(task) was not called`);
    const parsed = t.args.safeParse(args ?? {});
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      return errorResult('invalid_args', `invalid arguments for ${name}: ${i.path.length ? i.path.join('.') : '(arguments)'}: ${i.message}`);
    }
    return { tool: t, args: parsed.data };
  }

  private failure(name: string, e: unknown): ToolResult {
    if (e instanceof ToolFailure) return errorResult(e.kind as ToolErrorKind, e.message);
    return errorResult('internal', `internal error in ${name}: ${(e as Error)?.message ?? String(e)}`);
  }

  /** Synchronous tools only (the replay of edits); a tool that runs a program answers through callAsync. */
  call(name: string, args: unknown): ToolResult {
    const p = this.prepare(name, args);
    if ('ok' in p) return p;
    try {
      const result = p.tool.run(this.s as S, p.args, {});
      if (result instanceof Promise) {
        result.catch(() => {});
        return errorResult('internal', `${name} runs a program: call it with callAsync`);
      }
      return { ok: true, result };
    } catch (e) {
      return this.failure(name, e);
    }
  }

  async callAsync(name: string, args: unknown, signal?: AbortSignal): Promise<ToolResult> {
    const p = this.prepare(name, args);
    if ('ok' in p) return p;
    try {
      return { ok: true, result: await p.tool.run(this.s as S, p.args, { signal }) };
    } catch (e) {
      if (signal?.aborted || e instanceof SandboxRefusedError) throw e;
      return this.failure(name, e);
    }
  }

  /** Starts from a given state (the repo verdict replays edits on a fresh copy). */
  load(state: S): void {
    this.s = state;
    this.episode = { confirmed: false };
  }

  stateHash(): string {
    return this.s === undefined ? '' : hashValue(this.def.snapshot(this.s));
  }

  state(): S {
    if (this.s === undefined) throw new Error(`${this.name}: reset(task) was not called`);
    return this.s;
  }

  patch(): string | undefined {
    return this.s !== undefined && this.def.patch ? this.def.patch(this.s) : undefined;
  }

  done(): boolean {
    return this.s !== undefined && !!this.def.done?.(this.s);
  }
}

/** The text of a sandbox run as a tool shows it: outcome, the output's tail, the error's tail. */
export function describeRun(r: SandboxResult, keep = 1500): Record<string, unknown> {
  const tail = (s: string) => (s.length > keep ? `…${s.slice(-keep)}` : s);
  return { outcome: r.outcome, reason: r.ok ? undefined : r.reason, stdout: tail(r.stdout), stderr: tail(r.stderr) };
}

/** The first ```python block of a reply (or the reply itself): the code the agent answered with. */
export function codeOf(text: string): string {
  const fence = /```(?:python|py)?[^\n]*\n([\s\S]*?)(?:```|$)/.exec(text);
  return fence ? fence[1] : text;
}

/** A verdict's own failure (never the agent's): the sandbox refused or the run was aborted — rethrown, not a reason. */
export const mustRethrow = (e: unknown, signal?: AbortSignal): boolean => !!signal?.aborted || e instanceof SandboxRefusedError;
