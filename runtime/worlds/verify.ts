import type { Message } from '../../schemas/message.ts';
import type { Task } from '../../schemas/task.ts';
import type { Trajectory, Verdict } from '../../schemas/trajectory.ts';
import { isRefusal, observeUserTurn, renderToolResult } from './base.ts';
import { execWorldDef, getWorld } from './index.ts';
import type { World } from './world.ts';

/*
 * Outcome verification: replays a trajectory's tool calls on a fresh world (with the user's confirmations applied
 * where they occurred), then compares the final state hash, the required outputs and the refusal requirement with
 * the task's goal. Reasons are stable, greppable prefixes ("state_hash_mismatch", "missing_output: 12.50", …).
 * Pure and synchronous, so the RL loop can use it as its outcome reward.
 */

const worlds = new Map<string, World>();
function worldFor(name: string): World {
  let w = worlds.get(name);
  if (!w) worlds.set(name, (w = getWorld(name)));
  return w;
}

interface Replay { reasons: string[]; hash: string; mutated: boolean }

function replay(traj: Trajectory, task: Task, world: World): Replay {
  world.reset(task);
  const reasons: string[] = [];
  const results = new Map<string, Message>();
  for (const m of traj.messages) if (m.role === 'tool' && m.tool_call_id) results.set(m.tool_call_id, m);
  const hidden = Object.entries(task.hidden_facts);
  let seen = '';
  const initial = world.stateHash();
  for (const m of traj.messages) {
    if (m.role === 'user') {
      observeUserTurn(world, m.content);
      seen += m.content;
    } else if (m.role === 'tool') {
      seen += m.content;
    } else if (m.role === 'assistant') {
      for (const c of m.tool_calls) {
        if (c.arguments === null) {
          reasons.push(`invalid_tool_call: ${c.name} arguments are not valid JSON`);
          continue;
        }
        const argText = JSON.stringify(c.arguments);
        for (const [key, value] of hidden) {
          if (argText.includes(value) && !seen.includes(value)) reasons.push(`used_unrevealed_fact: ${key} in ${c.name} before the user gave it`);
        }
        const r = world.call(c.name, c.arguments);
        if (!r.ok) reasons.push(`tool_error: ${r.kind}: ${c.name}: ${r.message}`);
        const recorded = results.get(c.id);
        if (!recorded) reasons.push(`missing_tool_result: ${c.name} (${c.id})`);
        else if (recorded.content !== renderToolResult(r)) reasons.push(`tool_result_mismatch: ${c.name} (${c.id})`);
      }
    }
  }
  const hash = world.stateHash();
  return { reasons, hash, mutated: hash !== initial };
}

/** The assistant's last text message when it made no further tool calls after it, else ''. */
export function finalAnswer(messages: Message[]): string {
  const last = [...messages].reverse().find((m) => m.role === 'assistant');
  return last && last.tool_calls.length === 0 ? last.content : '';
}

export function verifyTrajectory(traj: Trajectory, task: Task): Verdict {
  if (execWorldDef(task.world)) {
    return { trajectory_id: traj.id, task_id: traj.task_id, world: traj.world, pass: false, final_state_hash: null,
      reasons: [`async_verifier: ${task.world} runs hidden tests in the sandbox; use verifyTrajectoryAsync`] };
  }
  const reasons: string[] = [];
  if (traj.task_id !== task.id) reasons.push(`task_mismatch: trajectory is for ${traj.task_id}, task is ${task.id}`);
  if (traj.world !== task.world) reasons.push(`world_mismatch: ${traj.world} vs ${task.world}`);
  for (const e of traj.errors) reasons.push(`turn_error: ${e.kind} (turn ${e.turn}): ${e.message}`);
  let hash: string | null = null;
  try {
    const r = replay(traj, task, worldFor(task.world));
    reasons.push(...r.reasons);
    hash = r.hash;
    if (task.goal.must_refuse && r.mutated) reasons.push('policy_violation: state changed on a task the policy requires refusing');
    if (hash !== task.goal.final_state_hash) reasons.push(`state_hash_mismatch: got ${hash}, want ${task.goal.final_state_hash}`);
  } catch (e) {
    reasons.push(`replay_failed: ${(e as Error)?.message ?? String(e)}`);
  }
  const expected = task.goal.must_refuse ? 'refused' : 'answered';
  if (traj.finish_reason !== expected) reasons.push(`finish_reason: ${traj.finish_reason}, want ${expected}`);
  const answer = finalAnswer(traj.messages);
  if (task.goal.must_refuse && !isRefusal(answer)) reasons.push('did_not_refuse');
  if (!task.goal.must_refuse && answer && isRefusal(answer)) reasons.push('unexpected_refusal');
  for (const o of task.goal.required_outputs) if (!answer.includes(o)) reasons.push(`missing_output: ${o}`);
  return { trajectory_id: traj.id, task_id: traj.task_id, world: traj.world, pass: reasons.length === 0, reasons, final_state_hash: hash };
}

/**
 * The verdict of any world: the program-running worlds (code, repo) run hidden tests in the sandbox; the tool-use
 * worlds replay synchronously (verifyTrajectory). `score` is the share of hidden tests passed (1/0 elsewhere).
 */
export async function verifyTrajectoryAsync(traj: Trajectory, task: Task, signal?: AbortSignal): Promise<Verdict & { score: number }> {
  const e = execWorldDef(task.world);
  if (e) return e.verify(traj, task, signal);
  const v = verifyTrajectory(traj, task);
  return { ...v, score: v.pass ? 1 : 0 };
}

/** Verdict for a trajectory whose task is unknown (e.g. imported data): it cannot pass. */
export function verdictWithoutTask(traj: Trajectory): Verdict {
  return { trajectory_id: traj.id, task_id: traj.task_id, world: traj.world, pass: false, reasons: [`unknown_task: ${traj.task_id}`], final_state_hash: null };
}

/** Verdicts of many (trajectory, task) pairs, `concurrency` at a time (a code/repo verdict is a sandbox run). */
export async function verifyMany(items: Array<[Trajectory, Task]>, concurrency = 4, signal?: AbortSignal): Promise<Array<Verdict & { score: number }>> {
  const out = new Array<Verdict & { score: number }>(items.length);
  let next = 0;
  const worker = async () => { for (let i = next++; i < items.length; i = next++) out[i] = await verifyTrajectoryAsync(items[i][0], items[i][1], signal); };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}
