import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TAU_DIR, TAU_SPLITS, type TauDomain } from '../../runtime/worlds/tau/data.ts';
import { GoldPolicy } from '../../runtime/eval/tau/gold-policy.ts';
import { runTauEpisode } from '../../runtime/eval/tau/episode.ts';
import { hashableRepr, isObj, parsePyJson, pyKeys, type Py, type PyObj } from '../../runtime/worlds/tau/pyvalue.ts';
import { ScriptedUser } from '../../runtime/eval/tau/user.ts';
import { replayGold, TauWorld, toTask } from '../../runtime/worlds/tau/world.ts';

/*
 * Conformance of our τ-bench worlds with upstream (data/tau-bench/<domain>/gold_replay_<split>.json, produced by
 * the upstream Python tools): every gold action's observation, the final value of every changed record and the
 * reference database hash, for every task of every split (685 tasks). The 500-task retail train split (~11 s
 * here) runs with AGENTFORGE_FULL_BENCH=1; the test and dev splits of both domains always run.
 */
const FULL = process.env.AGENTFORGE_FULL_BENCH === '1';
const same = (a: Py, b: Py) => hashableRepr(a) === hashableRepr(b); // type-aware: 50 ≠ 50.0

for (const domain of ['retail', 'airline'] as TauDomain[]) {
  describe(`τ-bench ${domain}`, () => {
    const world = new TauWorld(domain);
    for (const split of TAU_SPLITS[domain]) {
      it.runIf(FULL || split !== 'train')(`${split}: gold replay reproduces every observation, changed record and the reference hash`, () => {
        const gold = parsePyJson(readFileSync(join(TAU_DIR, domain, `gold_replay_${split}.json`), 'utf8')) as PyObj;
        const records = gold.tasks as PyObj[];
        const tasks = world.data.tasks(split);
        expect(records).toHaveLength(tasks.length);
        world.reset();
        expect(world.stateHash()).toBe(gold.initial_data_hash);
        const failures: string[] = [];
        for (const task of tasks) {
          const g = records[task.index];
          const r = replayGold(world, task);
          const obs = g.observations as Array<string | null>;
          const k = obs.findIndex((o, i) => o !== r.observations[i]);
          if (k >= 0 || obs.length !== r.observations.length) failures.push(`task ${task.index}: observation ${k} differs`);
          if (r.hash !== g.gt_data_hash) failures.push(`task ${task.index}: hash ${r.hash} ≠ ${g.gt_data_hash}`);
          const changed = g.changed_records as PyObj;
          for (const table of pyKeys(changed)) {
            for (const key of pyKeys(changed[table] as PyObj)) {
              const ours = world.state().get(table, key) ?? null;
              if (!same(ours, (changed[table] as PyObj)[key])) failures.push(`task ${task.index}: ${table}/${key} differs`);
            }
          }
          for (const [table, recs] of Object.entries(r.changed)) {
            for (const key of Object.keys(recs)) {
              const listed = isObj(changed[table]) && key in (changed[table] as PyObj);
              if (!listed && !same(recs[key], world.data.tables[table].get(key) ?? null)) failures.push(`task ${task.index}: ${table}/${key} changed but not in gold`);
            }
          }
        }
        expect(failures).toEqual([]);
      }, 120_000);
    }

    it('test split: the gold actions played by a policy through an episode get reward 1', async () => {
      const failures: string[] = [];
      for (const task of world.data.tasks('test')) {
        const t = toTask(world, task);
        const r = await runTauEpisode({ world, instruction: task.instruction, goalHash: t.goal.final_state_hash, requiredOutputs: task.outputs, agent: new GoldPolicy(task), user: new ScriptedUser(), maxSteps: 60 });
        if (r.reward !== 1) failures.push(`task ${task.index}: reward ${r.reward} (${r.ended}, hash ${r.hashMatch}, missing ${r.missingOutputs.join('|')}, ${r.error ?? ''})`);
      }
      expect(failures).toEqual([]);
    }, 120_000);

    it('wrong, unknown and malformed calls come back as upstream error observations', () => {
      world.reset();
      const h0 = world.stateHash();
      expect(world.call('no_such_tool', {})).toEqual({ ok: false, kind: 'unknown_tool', message: 'Unknown action no_such_tool' });
      const bad = world.call('get_user_details', { user: 'x' });
      expect(bad.ok).toBe(false);
      expect(!bad.ok && bad.message).toBe("Error: GetUserDetails.invoke() got an unexpected keyword argument 'user'");
      const missing = world.call('get_user_details', {});
      expect(!missing.ok && missing.message).toBe("Error: GetUserDetails.invoke() missing 1 required positional argument: 'user_id'");
      expect(world.call('get_user_details', { user_id: 'x'.repeat(1_000_000) })).toEqual({ ok: false, kind: 'precondition', message: 'Error: user not found' });
      expect(world.call('calculate', { expression: '2 + 2' })).toEqual({ ok: true, result: '4.0' });
      expect(world.call('calculate', { expression: 'import os' })).toMatchObject({ message: 'Error: invalid characters in expression' });
      expect(world.stateHash()).toBe(h0);
    });
  });
}
