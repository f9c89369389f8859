import type { ChatPolicy } from '../../agent/policy.ts';
import type { Message, ToolCall } from '../../../schemas/message.ts';
import { callArguments } from '../../agent/parse.ts';
import { chatTurns, runLoop, type UserSource } from '../../agent/loop.ts';
import type { TauUser } from './user.ts';
import { observation, tauReward, type TauReward, type TauWorld } from '../../worlds/tau/world.ts';

/*
 * One τ-bench episode on the shared episode loop (runtime/agent/loop.ts) with upstream's protocol
 * (tau_bench/agents/tool_calling_agent.py): the policy (wiki.md) is the system prompt, the simulated user speaks
 * first, each agent turn is either a reply to the user or ONE tool call (extra calls in a turn are dropped, as
 * upstream keeps tool_calls[:1]); the episode ends when the user says ###STOP###, the agent calls
 * transfer_to_human_agents, or after `maxSteps` agent turns (then the reward is 0, as upstream only scores
 * finished episodes).
 */
export interface EpisodeResult extends TauReward {
  steps: number;
  ended: 'user_stop' | 'transfer' | 'max_steps' | 'error';
  error: string | null;
  messages: Message[];
  finalHash: string;
}

export interface EpisodeArgs {
  world: TauWorld;
  instruction: string;
  goalHash: string;
  requiredOutputs: string[];
  agent: ChatPolicy;
  user: TauUser;
  maxSteps?: number;
  seed?: number;
  /** Names the episode in request idempotency keys. */
  id?: string;
  signal?: AbortSignal;
}

/** Errors that end a τ-bench episode (anything else is an observation the agent sees). */
const FATAL = new Set(['teacher_error', 'user_error', 'world_error', 'internal_error']);

export async function runTauEpisode(a: EpisodeArgs): Promise<EpisodeResult> {
  const { world, user } = a;
  world.reset();
  const simulator: UserSource = async (turn, messages, ctx) =>
    turn === 0 ? user.start(a.instruction, ctx.signal) : user.reply(messages.at(-1)?.content ?? '', ctx.signal);
  const r = await runLoop({
    id: a.id ?? 'tau', seed: a.seed, world, system: world.policy, user: simulator, assistant: chatTurns(a.agent, { maxCalls: 1 }),
    maxTurns: a.maxSteps ?? 30, maxErrorChars: Infinity, protocol: 'tau-bench', observe: (call) => runCall(world, call),
    handedOff: () => world.transferred, signal: a.signal,
  });
  const fatal = r.finish === 'error' ? [...r.errors].reverse().find((e) => FATAL.has(e.kind)) : undefined;
  const ended: EpisodeResult['ended'] = fatal ? 'error' : world.transferred ? 'transfer' : r.finish === 'user_stop' ? 'user_stop' : 'max_steps';
  // a turn whose agent request failed was not a step
  const steps = r.turns - (fatal && (fatal.kind === 'teacher_error') ? 1 : 0);
  const replies = r.messages.filter((m) => m.role === 'assistant' && m.tool_calls.length === 0).map((m) => m.content);
  const finalHash = world.stateHash();
  const scored = tauReward(finalHash, a.goalHash, a.requiredOutputs, replies);
  const reward = ended === 'user_stop' || ended === 'transfer' ? scored.reward : 0;
  return { ...scored, reward, steps, ended, error: fatal?.message ?? null, messages: r.messages, finalHash };
}

/** Arguments as json.loads would read the model's text (1.0 stays a float); non-JSON text becomes an error observation. */
function runCall(world: TauWorld, call: ToolCall): string {
  const args = callArguments(call);
  return args.ok ? observation(world.call(call.name, args.args)) : `Error: ${args.error}`;
}
