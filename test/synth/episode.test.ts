import { describe, expect, it } from 'vitest';
import { Trajectory } from '../../schemas/trajectory.ts';
import { makeTasks, WORLD_NAMES } from '../../runtime/worlds/index.ts';
import { verifyTrajectory } from '../../runtime/worlds/verify.ts';
import { scriptedTeacher } from '../../runtime/agent/scripted.ts';
import { NOISE_KINDS } from '../../runtime/agent/plan.ts';
import { episode } from './helpers.ts';

const tasks = Object.fromEntries(WORLD_NAMES.map((w) => [w, makeTasks(w, { seed: 21, n: 60 })]));

describe('scripted episodes', () => {
  it('noise 0: every trajectory is valid and passes verification', async () => {
    for (const w of WORLD_NAMES) {
      for (const t of tasks[w]) {
        const tr = Trajectory.parse(await episode(t));
        const v = verifyTrajectory(tr, t);
        expect(v.reasons, `${t.id}: ${t.instruction}`).toEqual([]);
        expect(tr.finish_reason).toBe(t.goal.must_refuse ? 'refused' : 'answered');
        expect(v.final_state_hash).toBe(t.goal.final_state_hash);
      }
    }
  });

  it('asks for missing facts and for confirmation before gated calls', async () => {
    const t = makeTasks('retail', { seed: 3, n: 200 }).find((x) => x.tags.includes('ask_user') && x.tags.includes('kind:cancel_order'))!;
    const tr = await episode(t);
    const roles = tr.messages.map((m) => (m.tool_calls.length ? `call:${m.tool_calls[0].name}` : m.role));
    expect(roles).toEqual(['system', 'user', 'assistant', 'user', 'call:get_order', 'tool', 'assistant', 'user', 'call:cancel_order', 'tool', 'assistant']);
    expect(tr.messages[3].content).toBe(`My order id is ${t.hidden_facts.order_id}.`);
    expect(tr.messages[7].content).toBe('Yes, I confirm.');
  });

  it('is deterministic: same task and seed give identical trajectories, including noise', async () => {
    for (const t of tasks.bank.slice(0, 20)) {
      expect(await episode(t, 5, { rate: 0.5 })).toEqual(await episode(t, 5, { rate: 0.5 }));
    }
    const labels = new Set<string>();
    for (const t of tasks.travel) for (const s of [1, 2, 3]) labels.add(scriptedTeacher(t, s, { rate: 0.5 }).name);
    expect([...labels].sort()).toEqual(['scripted', ...NOISE_KINDS.map((k) => `scripted+${k}`)].sort());
  });

  it('each noise kind yields a failing trajectory with the matching reason', async () => {
    const expected: Record<string, RegExp> = {
      wrong_arg: /state_hash_mismatch|tool_error: (not_found|precondition|policy)/,
      skip_confirm: /tool_error: policy: .*confirmation/,
      premature: /missing_output|state_hash_mismatch|did_not_refuse/,
      hallucinate: /tool_error: unknown_tool/,
    };
    const seen = new Set<string>();
    for (const w of WORLD_NAMES) {
      for (const t of tasks[w]) {
        for (const kind of NOISE_KINDS) {
          const teacher = scriptedTeacher(t, 1, { rate: 1, kinds: [kind] });
          if (teacher.noise !== kind) continue; // not applicable (e.g. no confirmation to skip)
          const v = verifyTrajectory(await episode(t, 1, { rate: 1, kinds: [kind] }), t);
          expect(v.pass, `${kind} on ${t.id}`).toBe(false);
          expect(v.reasons.join('\n'), `${kind} on ${t.id}`).toMatch(expected[kind]);
          seen.add(kind);
        }
      }
    }
    expect([...seen].sort()).toEqual([...NOISE_KINDS].sort());
  });
});
