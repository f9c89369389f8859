import { z } from 'zod';
import type { Task } from '../../../schemas/task.ts';
import type { ToolSpec } from '../../../schemas/tool.ts';
import type { EpisodeContext, ToolDef, ToolResult, World } from '../world.ts';
import { AIRLINE_TOOLS } from './airline-tools.ts';
import { loadTauDomain, toPlain, type TauDomain, type TauDomainData, type TauTask } from './data.ts';
import { TauDb } from './db.ts';
import { deepClone, isObj, pyKeys, type Py, type PyObj } from './pyvalue.ts';
import { RETAIL_TOOLS, type TauTool } from './retail-tools.ts';

/*
 * τ-bench retail / airline as a World. Observations are exactly upstream's strings: a successful call returns
 * ToolOk whose `result` is the observation string; a failing one returns ToolError whose `message` is the
 * upstream text (`Error: …`, `Unknown action …`) — an agent loop shows `message` verbatim, never a paraphrase.
 */
const ARGS = z.record(z.string(), z.unknown());
const camel = (name: string) => name.split('_').map((w) => w[0].toUpperCase() + w.slice(1)).join('');

export class TauWorld implements World<TauDb> {
  readonly name: string;
  readonly policy: string;
  readonly tools: ReadonlyArray<ToolDef<z.ZodType, TauDb>>;
  readonly data: TauDomainData;
  episode: EpisodeContext = { confirmed: false };
  /** Set when the agent called transfer_to_human_agents (ends the episode). */
  transferred = false;
  private db: TauDb;
  private impl: Record<string, TauTool>;
  private required: Map<string, string[]>;

  constructor(readonly domain: TauDomain, data = loadTauDomain(domain)) {
    this.data = data;
    this.name = `tau-${domain}`;
    this.policy = data.policy;
    this.db = new TauDb(data.tables);
    this.impl = domain === 'retail' ? RETAIL_TOOLS : AIRLINE_TOOLS;
    this.required = new Map(data.toolSpecs.map((s) => [s.function.name, (s.function.parameters.required as string[] | undefined) ?? []]));
    this.tools = data.toolSpecs.map((s) => ({
      name: s.function.name, description: s.function.description, args: ARGS,
      mutates: !/^(calculate|think|transfer_to_human_agents|find_|get_|list_|search_)/.test(s.function.name),
      run: (db: TauDb, args: Record<string, unknown>) => this.impl[s.function.name](db, args as PyObj),
    }));
  }

  toolSpecs(): ToolSpec[] { return this.data.toolSpecs; }
  reset(_task?: Task): void { this.db.reset(); this.transferred = false; this.episode = { confirmed: false }; }
  state(): TauDb { return this.db; }
  stateHash(): string { return this.db.hash(); }

  call(name: string, args: unknown): ToolResult {
    const tool = Object.hasOwn(this.impl, name) ? this.impl[name] : undefined;
    if (!tool) return { ok: false, kind: 'unknown_tool', message: `Unknown action ${name}` };
    if (name === 'transfer_to_human_agents') this.transferred = true;
    if (!isObj(args)) return { ok: false, kind: 'invalid_args', message: `Error: ${camel(name)}.invoke() argument after ** must be a mapping, not ${Array.isArray(args) ? 'list' : typeof args}` };
    const bad = this.typeError(name, args);
    if (bad) return { ok: false, kind: 'invalid_args', message: bad };
    let obs: string;
    try {
      obs = tool(this.db, deepClone(args)); // never alias the caller's objects into the database
    } catch (e) {
      return { ok: false, kind: 'internal', message: `Error: ${(e as Error).message}` };
    }
    return obs.startsWith('Error: ') ? { ok: false, kind: 'precondition', message: obs } : { ok: true, result: obs };
  }

  /** Python's TypeError for a keyword call with unknown or missing arguments (upstream shows it as `Error: …`). */
  private typeError(name: string, args: PyObj): string | null {
    const required = this.required.get(name) ?? [];
    const extra = pyKeys(args).find((k) => !required.includes(k));
    if (extra) return `Error: ${camel(name)}.invoke() got an unexpected keyword argument '${extra}'`;
    const missing = required.filter((k) => !(k in args));
    if (missing.length === 0) return null;
    const names = missing.map((m) => `'${m}'`);
    const list = names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
    return `Error: ${camel(name)}.invoke() missing ${missing.length} required positional argument${missing.length > 1 ? 's' : ''}: ${list}`;
  }
}

/** The observation text an agent sees for a result (upstream shows strings only). */
export const observation = (r: ToolResult): string => (r.ok ? String(r.result) : r.message);

export interface GoldReplay { observations: Array<string | null>; hash: string; changed: Record<string, Record<string, Py>> }

/** Replays a task's gold actions on a fresh database, as τ-bench's scorer does (transfer_to_human_agents skipped). */
export function replayGold(world: TauWorld, task: TauTask): GoldReplay {
  world.reset();
  // upstream's gold_replay files keep a null observation for the skipped transfer
  const observations = task.actions.map((a) => (a.name === 'transfer_to_human_agents' ? null : observation(world.call(a.name, a.kwargs))));
  return { observations, hash: world.stateHash(), changed: world.state().changed() };
}

/** A τ-bench task as a Task record; the goal hash is the hash after the gold replay on our world. */
export function toTask(world: TauWorld, task: TauTask): Task {
  const gold = replayGold(world, task);
  return {
    id: `tau-${world.domain}-${task.split}-${task.index}`, world: world.name, instruction: task.instruction, hidden_facts: {},
    seed: task.index, difficulty: Math.max(1, task.actions.length), split: task.split === 'train' ? 'train' : 'heldout',
    tags: ['tau-bench', world.domain, task.split, `user:${task.userId}`],
    goal: {
      final_state_hash: gold.hash, required_outputs: task.outputs, must_refuse: false,
      gold_actions: task.actions.map((a) => ({ name: a.name, arguments: toPlain(a.kwargs) as Record<string, unknown> })),
    },
  };
}

export interface TauReward { reward: 0 | 1; hashMatch: boolean; missingOutputs: string[] }

/** τ-bench's reward: final hash equals the gold one, and every required output occurs in some agent reply. */
export function tauReward(finalHash: string, goalHash: string, requiredOutputs: string[], agentReplies: string[]): TauReward {
  const said = agentReplies.map((m) => m.toLowerCase().replaceAll(',', ''));
  const missingOutputs = requiredOutputs.filter((o) => !said.some((m) => m.includes(o.toLowerCase())));
  const hashMatch = finalHash === goalHash;
  return { reward: hashMatch && missingOutputs.length === 0 ? 1 : 0, hashMatch, missingOutputs };
}
