import type { z } from 'zod';
import type { Task } from '../../schemas/task.ts';
import type { ToolSpec } from '../../schemas/tool.ts';

/**
 * A stateful tool environment. A model's mistake never throws: every failure of a call comes back as a ToolError
 * so the agent loop can show it to the model as an observation.
 */
export type ToolErrorKind = 'unknown_tool' | 'invalid_args' | 'precondition' | 'policy' | 'not_found' | 'internal';

export interface ToolError {
  ok: false;
  kind: ToolErrorKind;
  /** Human-readable message shown to the model (for invalid_args it names the zod path). */
  message: string;
}
export interface ToolOk {
  ok: true;
  /** JSON-serialisable result shown to the model. */
  result: unknown;
}
export type ToolResult = ToolOk | ToolError;

/** One typed tool: zod args → result. `mutates` marks tools that change state (refusal tasks forbid them). */
export interface ToolDef<A extends z.ZodType = z.ZodType, S = unknown> {
  name: string;
  description: string;
  args: A;
  mutates: boolean;
  /** Throws ToolFailure for preconditions/policy; any other throw is reported as kind 'internal'. */
  run(state: S, args: z.infer<A>, ctx: EpisodeContext): unknown;
}

/** Per-episode facts a tool may need (e.g. whether the user has confirmed in this conversation). */
export interface EpisodeContext {
  /** True once the user has explicitly confirmed a pending action in the conversation. */
  confirmed: boolean;
}

export interface World<S = unknown> {
  readonly name: string;
  /** Written policy shown in the system prompt. */
  readonly policy: string;
  readonly tools: ReadonlyArray<ToolDef<z.ZodType, S>>;
  /** OpenAI tool specs generated from the zod args (plus distractors where a task asks for them). */
  toolSpecs(): ToolSpec[];
  /** Fresh state for a task (database generated from the task's seed). */
  reset(task: Task): void;
  call(name: string, args: unknown): ToolResult;
  /**
   * Worlds whose tools run programs (code, repo: runtime/worlds/code/exec.ts): the loop awaits this instead of
   * call(), so a sandbox run does not block other episodes.
   */
  callAsync?(name: string, args: unknown, signal?: AbortSignal): Promise<ToolResult>;
  /** The repo world: the episode's change as a unified diff (stored in Trajectory.patch). */
  patch?(): string | undefined;
  /** True once a call has ended the episode (the repo world's submit): the loop finishes it as answered. */
  done?(): boolean;
  /** Deterministic hash of the serialisable state. */
  stateHash(): string;
  state(): S;
  episode: EpisodeContext;
}
