/*
 * Group sampling and dynamic sampling (TS side): groups with equal rewards are set aside and refilled with new
 * tasks until the batch has enough informative groups, or the budget runs out. Rollouts are real agent-loop
 * episodes on the retail world; the policy per task is scripted (always right, always wrong, or mixed).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadChatTokenizer, type ChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { DEFAULT_LIMITS, runRollout } from '../../runtime/agent/loop.ts';
import { BatchingGenerator } from '../../runtime/agent/batcher.ts';
import { isInformative, runGroups, sampleBatch, taskStream, type GroupOptions } from '../../runtime/rl/groups.ts';
import { RewardParams, scoreRollout } from '../../runtime/rewards/mix.ts';
import { getWorld } from '../../runtime/worlds/index.ts';
import { scriptedUser } from '../../runtime/agent/scripted.ts';
import type { Task } from '../../schemas/task.ts';
import { tinyTokenizer } from '../fixtures/python.ts';
import { goldStatus, ScriptedEngine, statusTasks, type Script } from './helpers.ts';

let ct: ChatTokenizer;
let tasks: Task[];
beforeAll(async () => {
  ct = loadChatTokenizer(await tinyTokenizer('qwen'));
  tasks = statusTasks(12);
}, 900_000);

const wrong: Script = (p, turn) => (turn === 0 ? goldStatus(p, 0) : 'Order is lost.');
/** Task i: i % 3 == 0 always solved, == 1 always failed, == 2 mixed (sample 0 right, the others wrong). */
const kindOf = (t: Task) => ['solved', 'failed', 'mixed'][tasks.indexOf(t) % 3];

function options(over: Partial<GroupOptions> = {}): GroupOptions {
  return {
    step: 1, seed: 0, groupSize: 3, concurrency: 8,
    score: (r, t) => scoreRollout(r, t, RewardParams.parse({})),
    run: (job) => {
      const k = kindOf(job.task);
      const script = k === 'solved' || (k === 'mixed' && job.sample === 0) ? goldStatus : wrong;
      return runRollout(job, { world: getWorld('retail'), user: scriptedUser(job.task), gen: new BatchingGenerator(new ScriptedEngine(ct, script)),
        ct, limits: { ...DEFAULT_LIMITS, maxContext: 16_384 }, sampling: { temperature: 1, topP: 1 } });
    },
    ...over,
  };
}

const inOrder = () => {
  let i = 0;
  return (n: number) => tasks.slice(i, (i += n));
};

describe('groups', () => {
  it('runs G rollouts per task with distinct seeds and one group id per task', async () => {
    const groups = await runGroups(tasks.slice(0, 2), options());
    expect(groups.map((g) => g.length)).toEqual([3, 3]);
    expect(new Set(groups[0].map((r) => r.group_id)).size).toBe(1);
    expect(new Set(groups.flat().map((r) => r.seed)).size).toBe(6);
    expect(groups[0].map((r) => r.sample)).toEqual([0, 1, 2]);
    expect(groups[0].every((r) => r.success)).toBe(true);
  });

  it('dynamic sampling drops solved and failed groups and refills until it has enough informative ones', async () => {
    const b = await sampleBatch(inOrder(), 3, 12, true, options());
    expect(b.kept).toHaveLength(3);
    expect(b.kept.every((g) => isInformative(g))).toBe(true);
    expect(b.kept.map((g) => kindOf(tasks.find((t) => t.id === g[0].task_id)!))).toEqual(['mixed', 'mixed', 'mixed']);
    // waves of the missing count: tasks 0-2 (one mixed), 3-4 (none), 5-6 (one), 7 (none), 8 (one)
    expect(b.tried).toBe(9);
    expect(b.droppedSolved).toBe(3);
    expect(b.droppedFailed).toBe(3);
    expect(b.all).toHaveLength(9);
  });

  it('screening spends s rollouts on uniform tasks and completes the varied ones to whole groups', async () => {
    const full = await sampleBatch(inOrder(), 3, 12, true, options());
    const b = await sampleBatch(inOrder(), 3, 12, true, options(), 2);
    expect(b.kept.map((g) => g.map((r) => r.id))).toEqual(full.kept.map((g) => g.map((r) => r.id)));
    expect(b.kept.flat().map((r) => r.seed)).toEqual(full.kept.flat().map((r) => r.seed));
    expect(b.all.map((g) => g.length)).toEqual(b.all.map((g) => (isInformative(g) ? 3 : 2)));
    expect(b.all.flat()).toHaveLength(3 * 3 + 6 * 2);
    expect([b.tried, b.droppedSolved, b.droppedFailed]).toEqual([full.tried, full.droppedSolved, full.droppedFailed]);
  });

  it('a task that varies only after the screen is set aside (the price of screening)', async () => {
    const lateOnly: GroupOptions['run'] = (job) => options().run({ ...job, sample: job.sample === 2 ? 0 : 1 });
    const b = await sampleBatch(inOrder(), 3, 3, true, options({ run: lateOnly }), 2);
    expect(b.kept).toHaveLength(0);
    expect(b.all.every((g) => g.length === 2)).toBe(true);
    const unscreened = await sampleBatch(inOrder(), 3, 3, true, options({ run: lateOnly }));
    expect(unscreened.kept.length).toBeGreaterThan(0);
  });

  it('gives up after maxGroups and keeps what it found', async () => {
    const b = await sampleBatch(inOrder(), 3, 4, true, options());
    expect(b.tried).toBe(4);
    expect(b.kept).toHaveLength(1);
  });

  it('without dynamic sampling every group is kept', async () => {
    const b = await sampleBatch(inOrder(), 3, 12, false, options());
    expect(b.kept).toHaveLength(3);
    expect(b.tried).toBe(3);
  });

  it("'outcome_varies' keeps groups with successes and failures, not failures that differ only in shaping", async () => {
    // every task fails; sample 0 answers with one letter missing (partial answer credit), the others say nothing useful
    const nearMiss: Script = (p, turn) => (turn === 0 ? goldStatus(p, 0) : (goldStatus(p, turn) ?? '').replace(/\w\.$/, '.'));
    const shaped = options({
      score: (r, t) => scoreRollout(r, t, RewardParams.parse({ default: { answer: 0.25 } })),
      run: (job) => runRollout(job, { world: getWorld('retail'), user: scriptedUser(job.task), gen: new BatchingGenerator(new ScriptedEngine(ct, job.sample === 0 ? nearMiss : wrong)),
        ct, limits: { ...DEFAULT_LIMITS, maxContext: 16_384 }, sampling: { temperature: 1, topP: 1 } }),
    });
    const byReward = await sampleBatch(inOrder(), 2, 4, true, shaped);
    expect(byReward.kept).toHaveLength(2);
    expect(byReward.kept.flat().every((r) => !r.success)).toBe(true);
    expect(new Set(byReward.kept[0].map((r) => r.reward)).size).toBe(2);
    const byOutcome = await sampleBatch(inOrder(), 2, 4, true, shaped, 0, 'outcome_varies');
    expect([byOutcome.kept.length, byOutcome.tried, byOutcome.droppedFailed]).toEqual([0, 4, 4]);
    // on the mixed tasks of the default policy both filters keep the same groups
    const mixed = await sampleBatch(inOrder(), 3, 12, true, options(), 0, 'outcome_varies');
    expect(mixed.kept.map((g) => g[0].task_id)).toEqual((await sampleBatch(inOrder(), 3, 12, true, options())).kept.map((g) => g[0].task_id));
  });

  it('untrainable rollouts do not make a group informative', () => {
    const base = { trainable: true, reward: 1 } as never;
    expect(isInformative([base, { ...(base as object), reward: 0, trainable: false } as never])).toBe(false);
    expect(isInformative([base, { ...(base as object), reward: 0 } as never])).toBe(true);
    const ok = { trainable: true, reward: 1.2, success: true } as never, bad = { trainable: true, reward: 0.1, success: false } as never;
    expect(isInformative([ok, bad], 'outcome_varies')).toBe(true);
    expect(isInformative([bad, { ...(bad as object), reward: 0.3 } as never], 'outcome_varies')).toBe(false);
    expect(isInformative([ok, { ...(bad as object), trainable: false } as never], 'outcome_varies')).toBe(false);
  });

  it('the task stream is seeded, endless and covers every task once per pass', () => {
    const a = taskStream(tasks, 7).next(24);
    expect(taskStream(tasks, 7).next(24)).toEqual(a);
    expect(new Set(a.slice(0, 12).map((t) => t.id)).size).toBe(12);
    expect(taskStream(tasks, 8).next(12).map((t) => t.id)).not.toEqual(a.slice(0, 12).map((t) => t.id));
  });
});
