import { describe, expect, it } from 'vitest';
import { Task } from '../../schemas/task.ts';
import { getWorld, makeTasks, splitOf, WORLD_NAMES, worldDef } from '../../runtime/worlds/index.ts';

describe('task generator', () => {
  const all = Object.fromEntries(WORLD_NAMES.map((w) => [w, makeTasks(w, { seed: 4, n: 120 })]));

  it('is deterministic, and ids are prefix-stable when n grows', () => {
    const again = makeTasks('retail', { seed: 4, n: 120 });
    expect(again).toEqual(all.retail);
    expect(makeTasks('retail', { seed: 4, n: 30 })).toEqual(all.retail.slice(0, 30));
    expect(makeTasks('retail', { seed: 5, n: 30 })).not.toEqual(all.retail.slice(0, 30));
    expect(all.retail[42].id).toBe('retail-train-00042');
  });

  it('produces valid tasks at graded difficulty with refusal, ask-user and distractor tasks in every world', () => {
    for (const w of WORLD_NAMES) {
      const ts = all[w];
      for (const t of ts) Task.parse(t);
      const diffs = new Set(ts.map((t) => t.difficulty));
      expect(diffs.has(1)).toBe(true);
      expect(Math.max(...diffs)).toBeGreaterThanOrEqual(6);
      expect(ts.some((t) => t.goal.must_refuse && t.tags.includes('refusal'))).toBe(true);
      const ask = ts.filter((t) => t.tags.includes('ask_user'));
      expect(ask.length).toBeGreaterThan(0);
      for (const t of ask) for (const v of Object.values(t.hidden_facts)) expect(t.instruction).not.toContain(v);
      expect(ts.some((t) => t.tags.includes('distractors'))).toBe(true);
      for (const t of ts.filter((x) => !x.goal.must_refuse)) {
        for (const o of t.goal.required_outputs) expect(t.goal.reference_answer).toContain(o);
      }
    }
  });

  it('gold actions replayed on a fresh world reach the goal hash; refusal tasks leave the state unchanged', () => {
    for (const w of WORLD_NAMES) {
      const world = getWorld(w);
      for (const t of all[w]) {
        world.reset(t);
        const initial = world.stateHash();
        for (const a of t.goal.gold_actions) {
          world.episode.confirmed = true;
          expect(world.call(a.name, a.arguments).ok).toBe(true);
        }
        expect(world.stateHash()).toBe(t.goal.final_state_hash);
        if (t.goal.must_refuse) expect(t.goal.final_state_hash).toBe(initial);
      }
    }
  });

  it('keeps held-out instructions and ids disjoint from training', () => {
    for (const w of WORLD_NAMES) {
      const held = makeTasks(w, { seed: 4, n: 40, split: 'heldout' });
      const trainIns = new Set(all[w].map((t) => t.instruction));
      expect(held.every((t) => t.split === 'heldout' && t.id.startsWith(`${w}-heldout-`))).toBe(true);
      expect(held.filter((t) => trainIns.has(t.instruction))).toEqual([]);
      // held-out-only kinds (the probe's unseen templates) never reach a train split, so only train kinds need the hash
      const heldoutOnly = new Set((worldDef(w).heldoutKinds ?? []).map((k) => `kind:${k.name}`));
      for (const t of [...held, ...all[w]].filter((x) => !heldoutOnly.has(x.tags[0]))) expect(splitOf(w, t.instruction)).toBe(t.split);
    }
  });

  it('filters by difficulty and kind, and names unknown kinds', () => {
    const hard = makeTasks('bank', { seed: 1, n: 10, minDifficulty: 6 });
    expect(hard.every((t) => t.difficulty >= 6)).toBe(true);
    expect(makeTasks('travel', { seed: 1, n: 5, kinds: ['flight_price'] }).every((t) => t.tags.includes('kind:flight_price'))).toBe(true);
    expect(() => makeTasks('travel', { seed: 1, n: 1, kinds: ['nope'] })).toThrow(/no task kind among \["nope"\]; have flight_price/);
    expect(() => makeTasks('mars', { seed: 1, n: 1 })).toThrow(/unknown world "mars"; known worlds: retail, travel, bank/);
  });
});
