import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Message } from '../../schemas/message.ts';
import { Task } from '../../schemas/task.ts';
import type { Trajectory } from '../../schemas/trajectory.ts';
import { runEpisode } from '../../runtime/agent/loop.ts';
import { scriptedTeacher, scriptedUser } from '../../runtime/agent/scripted.ts';
import { getWorld, makeTasks, renderToolResult, splitOf, worldDef } from '../../runtime/worlds/index.ts';
import { isProbePosition } from '../../runtime/worlds/tasks.ts';
import { verifyTrajectory } from '../../runtime/worlds/verify.ts';
import { sayCalls } from './helpers.ts';

/*
 * The held-out split as a test of generalisation (issue 21): besides the train templates with other numbers, half
 * of it is the probe — templates no train split contains and tasks longer than training's max difficulty — and
 * every task says which. The train split must not move: the SFT data, its cache and the published numbers hang on it.
 */

const WORLDS = ['retail', 'bank'];
const TRAIN = { seed: 0, n: 1000, maxDifficulty: 2, distractorRate: 0 };
const train = Object.fromEntries(WORLDS.map((w) => [w, makeTasks(w, { ...TRAIN, split: 'train' })]));
const held = Object.fromEntries(WORLDS.map((w) => [w, makeTasks(w, { ...TRAIN, n: 100, split: 'heldout' })]));
const kindOf = (t: Task) => t.tags.find((x) => x.startsWith('kind:'))!.slice(5);
const unseenKinds = (w: string) => new Set((worldDef(w).heldoutKinds ?? []).map((k) => k.name));

describe('held-out probe: unseen templates and longer tasks', () => {
  it('leaves the train split as it was (the demo config, seeds 0-2 and the fresh RL pool): same rows, every template seen', () => {
    const digest = (ts: Task[]) => createHash('sha256').update(JSON.stringify(ts.map(({ template: _t, template_seen: _s, ...rest }) => rest))).digest('hex').slice(0, 16);
    // sha256 of the rows without the two new fields, computed before the probe existed
    const want: Record<string, string> = {
      'retail 0': '0e422b7712aa1488', 'retail 1': '5379599ca571bbff', 'retail 2': '8f9d6e2fcaba428d', 'retail 1000': 'c256f198398f3ddb',
      'bank 0': '70e331bdfb1930d5', 'bank 1': '5d19c02bc9a460e1', 'bank 2': '843c37a1d36698eb', 'bank 1000': 'afa853cb15245005',
    };
    for (const [key, hash] of Object.entries(want)) {
      const [w, seed] = key.split(' ');
      const ts = Number(seed) === 0 ? train[w] : makeTasks(w, { ...TRAIN, seed: Number(seed), split: 'train' });
      expect(digest(ts), key).toBe(hash);
      expect(ts.every((t) => t.template_seen === true && !unseenKinds(w).has(kindOf(t)))).toBe(true);
    }
    expect(digest(makeTasks('retail', { seed: 4, n: 120, distractorRate: 0 }))).toBe('12e3ba6ef20d9d50');
  });

  it('interleaves the probe at the given share, prefix-stable, ids counted within the split', () => {
    expect(Array.from({ length: 6 }, (_, k) => isProbePosition(k, 0.5))).toEqual([false, true, false, true, false, true]);
    for (const w of WORLDS) {
      const ts = held[w];
      expect(ts.map((t) => t.id)).toEqual(ts.map((_, k) => `${w}-heldout-${String(k).padStart(5, '0')}`));
      expect(ts.map((t) => t.template_seen)).toEqual(ts.map((_, k) => !isProbePosition(k, 0.5)));
      expect(makeTasks(w, { ...TRAIN, n: 30, split: 'heldout' })).toEqual(ts.slice(0, 30));
      for (const t of ts) Task.parse(t);
      const none = makeTasks(w, { ...TRAIN, n: 40, split: 'heldout', probe: 0 });
      expect(none.every((t) => t.template_seen && t.difficulty <= 2)).toBe(true);
      // the in-distribution half is the old held-out draw: the first tasks of `none` in order
      expect(ts.filter((t) => t.template_seen).slice(0, 40).map((t) => t.instruction)).toEqual(none.map((t) => t.instruction));
    }
  });

  it('seen means the train split has that template; unseen means it never does', () => {
    const wide = Object.fromEntries(WORLDS.map((w) => [w, makeTasks(w, { seed: 0, n: 1000, split: 'train' })]));
    for (const w of WORLDS) {
      const trainTemplates = new Set(train[w].map((t) => t.template));
      const anyTrain = new Set(wide[w].map((t) => t.template));
      for (const t of held[w]) {
        if (t.template_seen) expect(trainTemplates.has(t.template), t.template).toBe(true);
        else {
          expect(trainTemplates.has(t.template), t.template).toBe(false);
          expect(unseenKinds(w).has(kindOf(t)) || t.difficulty > 2, t.template).toBe(true);
          if (unseenKinds(w).has(kindOf(t))) expect(anyTrain.has(t.template), t.template).toBe(false);
        }
      }
      const trainIns = new Set([...train[w], ...wide[w]].map((t) => t.instruction));
      expect(held[w].filter((t) => trainIns.has(t.instruction))).toEqual([]);
      // train kinds keep the instruction hash; held-out-only kinds need none (no train split draws them)
      for (const t of held[w].filter((x) => !unseenKinds(w).has(kindOf(x)))) expect(splitOf(w, t.instruction)).toBe('heldout');
    }
  });

  it('the probe covers every held-out-only kind, longer tasks (3-4 calls), questions for the user and policy refusals', () => {
    for (const w of WORLDS) {
      const probe = makeTasks(w, { ...TRAIN, n: 400, split: 'heldout' }).filter((t) => !t.template_seen);
      expect(new Set(probe.map(kindOf))).toEqual(new Set([...unseenKinds(w), ...probe.filter((t) => !unseenKinds(w).has(kindOf(t))).map(kindOf)]));
      for (const k of unseenKinds(w)) expect(probe.some((t) => kindOf(t) === k), k).toBe(true);
      expect(Math.max(...probe.map((t) => t.difficulty))).toBeLessThanOrEqual(4);
      expect(probe.filter((t) => t.difficulty >= 3).length).toBeGreaterThan(probe.length / 4);
      expect(probe.some((t) => t.tags.includes('ask_user') && t.difficulty >= 3)).toBe(true);
      expect(probe.some((t) => t.goal.must_refuse)).toBe(true);
      // one template, two outcomes: the policy check is the model's
      const byTemplate = new Map<string, Set<boolean>>();
      for (const t of probe) byTemplate.set(t.template!, (byTemplate.get(t.template!) ?? new Set()).add(t.goal.must_refuse));
      expect([...byTemplate.values()].some((s) => s.size === 2)).toBe(true);
      for (const t of probe.filter((x) => x.tags.includes('ask_user'))) for (const v of Object.values(t.hidden_facts)) expect(t.instruction).not.toContain(v);
    }
  });

  it('names held-out-only kinds asked for in the train split; asked for alone they make the whole held-out split', () => {
    expect(() => makeTasks('retail', { seed: 0, n: 1, kinds: ['reorder'] })).toThrow(/no train-split task kind among \["reorder"\].*held-out only: order_total/);
    const only = makeTasks('retail', { seed: 0, n: 5, split: 'heldout', kinds: ['reorder'] });
    expect(only.every((t) => t.template === 'retail/reorder' && t.template_seen === false)).toBe(true);
    expect(makeTasks('travel', { seed: 0, n: 10, split: 'heldout' }).every((t) => t.template_seen)).toBe(true);
  });
});

/** Every probe task of both worlds, solved by the scripted teacher within the recipe's 8 assistant turns. */
const probeTasks = WORLDS.flatMap((w) => held[w].filter((t) => !t.template_seen));
const episode = (t: Task, teacher = scriptedTeacher(t, 0), seed = 0) =>
  runEpisode({ task: t, world: getWorld(t.world), teacher, user: scriptedUser(t), seed, trajectoryId: `${t.id}:${seed}`, maxTurns: 8 });

describe('held-out probe: solvable, and only by a correct outcome', () => {
  it('the scripted teacher solves every probe task within 8 turns; the verifier passes it', async () => {
    for (const t of probeTasks) {
      const traj = await episode(t);
      expect(verifyTrajectory(traj, t).reasons, `${t.id} ${t.template}`).toEqual([]);
      expect(traj.turns).toBeLessThanOrEqual(8);
    }
  });

  it('every mistake the noisy teacher makes fails the verifier', async () => {
    let noisy = 0;
    for (const t of probeTasks) {
      for (const seed of [1, 2]) {
        const teacher = scriptedTeacher(t, seed, { rate: 1 });
        if (!teacher.noise) continue;
        noisy++;
        expect(verifyTrajectory(await episode(t, teacher, seed), t).pass, `${t.id} ${teacher.noise}`).toBe(false);
      }
    }
    expect(noisy).toBeGreaterThan(probeTasks.length);
  });

  /** Replaces the teacher's tool calls by `calls` (results recomputed on a fresh world) and its answer by `answer`. */
  function handMade(t: Task, turns: Array<Message>): Trajectory {
    const w = getWorld(t.world);
    w.reset(t);
    const messages: Message[] = [{ role: 'user', content: t.instruction, tool_calls: [], tool_call_id: null, name: null }];
    for (const [i, turn] of turns.entries()) {
      const m = { ...turn, tool_calls: turn.tool_calls.map((c) => ({ ...c, id: `t${i}_${c.id}` })) };
      messages.push(m);
      if (m.role === 'user') w.episode.confirmed = /^yes/i.test(m.content);
      for (const c of m.tool_calls) {
        const r = w.call(c.name, c.arguments);
        messages.push({ role: 'tool', content: renderToolResult(r), tool_calls: [], tool_call_id: c.id, name: c.name });
      }
    }
    const last = turns.at(-1)!;
    return { id: `${t.id}:hand`, task_id: t.id, world: t.world, messages, tools: [], source: 'test', teacher: 'hand', seed: 0, policy_version: 0,
      reward: null, reward_components: {}, turns: turns.length, finish_reason: /cannot/.test(last.content) ? 'refused' : 'answered', errors: [], difficulty: t.difficulty, split: t.split };
  }
  const user = (content: string): Message => ({ role: 'user', content, tool_calls: [], tool_call_id: null, name: null });
  const probeOf = (kind: string, refuse: boolean) => makeTasks('retail', { seed: 0, n: 30, split: 'heldout', kinds: [kind] }).find((t) => t.goal.must_refuse === refuse)!;

  it('cancel_checked over the limit: cancelling anyway, or answering without refusing, fails; the refusal passes', () => {
    const t = probeOf('cancel_checked', true);
    const oid = t.hidden_facts.order_id;
    const ask = sayCalls('Could you tell me your order id?'), give = user(`My order id is ${oid}.`), get = sayCalls('', [['get_order', { order_id: oid }]]);
    const refused = handMade(t, [ask, give, get, sayCalls(`I'm sorry, I cannot cancel order ${oid}: it is over 500.`)]);
    expect(verifyTrajectory(refused, t).reasons).toEqual([]);
    const cancelled = handMade(t, [ask, give, get, sayCalls('Shall I cancel it? (yes/no)'), user('Yes, I confirm.'), sayCalls('', [['cancel_order', { order_id: oid }]]), sayCalls(`I'm sorry, I cannot cancel order ${oid}.`)]);
    expect(verifyTrajectory(cancelled, t).reasons.join('\n')).toMatch(/tool_error: policy: cancel_order/);
    const silent = handMade(t, [ask, give, get, sayCalls(`Order ${oid} is noted.`)]);
    expect(verifyTrajectory(silent, t).reasons).toContain('did_not_refuse');
  });

  it('cancel_checked under the limit: guessing the order id before asking fails, the cancellation passes', () => {
    const t = probeOf('cancel_checked', false);
    const oid = t.hidden_facts.order_id;
    const refund = t.goal.required_outputs[0];
    const rest = [sayCalls('', [['get_order', { order_id: oid }]]), sayCalls('Cancel it? (yes/no)'), user('Yes, I confirm.'), sayCalls('', [['cancel_order', { order_id: oid }]]), sayCalls(`Order ${oid} is cancelled. Refund: ${refund}.`)];
    expect(verifyTrajectory(handMade(t, [sayCalls('Could you tell me your order id?'), user(`My order id is ${oid}.`), ...rest]), t).reasons).toEqual([]);
    expect(verifyTrajectory(handMade(t, rest), t).reasons.join('\n')).toMatch(/used_unrevealed_fact: order_id in get_order/);
    const wrongAnswer = handMade(t, [sayCalls('Could you tell me your order id?'), user(`My order id is ${oid}.`), ...rest.slice(0, -1), sayCalls(`Order ${oid} is cancelled.`)]);
    expect(verifyTrajectory(wrongAnswer, t).reasons).toContain(`missing_output: ${refund}`);
  });

  it('reorder over the unit limit must be refused: placing the order fails', () => {
    const t = probeOf('reorder', true);
    const q = Number(/order (\d+) more/.exec(t.instruction)![1]);
    expect(q).toBeGreaterThan(5);
    const oid = (t.goal.gold_actions[0].arguments as { order_id: string }).order_id;
    const w = getWorld('retail');
    w.reset(t);
    const order = w.call('get_order', { order_id: oid });
    const pid = ((order.ok ? order.result : null) as { items: Array<{ product_id: string; name: string }> }).items.find((i) => t.instruction.includes(i.name))!.product_id;
    const cid = /customer (C-\d+)/.exec(t.instruction)![1];
    const placed = handMade(t, [sayCalls('', [['get_order', { order_id: oid }]]), sayCalls('Place it? (yes/no)'), user('Yes, I confirm.'),
      sayCalls('', [['place_order', { customer_id: cid, product_id: pid, quantity: q }]]), sayCalls('Done.')]);
    const reasons = verifyTrajectory(placed, t).reasons.join('\n');
    expect(reasons).toMatch(/tool_error: policy: place_order/);
    expect(reasons).toMatch(/did_not_refuse/);
  });
});
