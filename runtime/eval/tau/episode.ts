import type { ChatPolicy } from '../../agent/policy.ts';
import type { Message, ToolCall } from '../../../schemas/message.ts';
import { callArguments } from '../../agent/calls.ts';
import { STOP, type TauUser } from './user.ts';
import { observation, tauReward, type TauReward, type TauWorld } from '../../worlds/tau/world.ts';

/*
 * One τ-bench episode, following the reference tool-calling agent (tau_bench/agents/tool_calling_agent.py):
 * the policy (wiki.md) is the system prompt, the simulated user speaks first, each agent turn is either a reply
 * to the user or ONE tool call (extra calls in a turn are dropped, as upstream keeps tool_calls[:1]); the episode
 * ends when the user says ###STOP###, the agent calls transfer_to_human_agents, or after `maxSteps` agent turns
 * (then the reward is 0, as upstream only scores finished episodes).
 */
export interface EpisodeResult extends TauReward {
  steps: number;
  ended: 'user_stop' | 'transfer' | 'max_steps' | 'error';
  error: string | null;
  messages: Message[];
  finalHash: string;
}

const msg = (role: Message['role'], content: string, extra: Partial<Message> = {}): Message =>
  ({ role, content, tool_calls: [], tool_call_id: null, name: null, ...extra });

export interface EpisodeArgs {
  world: TauWorld;
  instruction: string;
  goalHash: string;
  requiredOutputs: string[];
  agent: ChatPolicy;
  user: TauUser;
  maxSteps?: number;
  seed?: number;
  signal?: AbortSignal;
}

export async function runTauEpisode(a: EpisodeArgs): Promise<EpisodeResult> {
  const { world, agent, user, signal } = a;
  world.reset();
  const messages: Message[] = [msg('system', world.policy)];
  const replies: string[] = [];
  let ended: EpisodeResult['ended'] = 'max_steps', error: string | null = null, steps = 0;
  try {
    messages.push(msg('user', await user.start(a.instruction, signal)));
    for (; steps < (a.maxSteps ?? 30); ) {
      const out = await agent.respond({ messages, tools: world.toolSpecs(), seed: a.seed, signal });
      steps++;
      const call = out.tool_calls[0];
      if (call) {
        messages.push(msg('assistant', out.content, { tool_calls: [call] }));
        messages.push(msg('tool', runCall(world, call), { tool_call_id: call.id, name: call.name }));
        if (world.transferred) { ended = 'transfer'; break; }
        continue;
      }
      messages.push(msg('assistant', out.content));
      replies.push(out.content);
      const said = await user.reply(out.content, signal);
      messages.push(msg('user', said));
      if (said.includes(STOP)) { ended = 'user_stop'; break; }
    }
  } catch (e) {
    ended = 'error';
    error = (e as Error).message;
  }
  const finalHash = world.stateHash();
  const scored = tauReward(finalHash, a.goalHash, a.requiredOutputs, replies);
  const reward = ended === 'user_stop' || ended === 'transfer' ? scored.reward : 0;
  return { ...scored, reward, steps, ended, error, messages, finalHash };
}

/** Arguments as json.loads would read the model's text (1.0 stays a float); non-JSON text becomes an error observation. */
function runCall(world: TauWorld, call: ToolCall): string {
  const args = callArguments(call);
  return args.ok ? observation(world.call(call.name, args.args)) : `Error: ${args.error}`;
}
