import { z } from 'zod';
import { Trajectory, type Verdict } from '../../schemas/trajectory.ts';
import { canonicalJson } from '../worlds/hash.ts';
import { Rng } from '../engine/rng.ts';
import { groupBy } from '../engine/collections.ts';

/*
 * Curation of verified trajectories, as a pure function: every input row comes back with kept + reasons, so the
 * rejected ones stay queryable. Order of rules: verdict → turn/length bounds → dedup on the normalised action
 * sequence → cap per task → target mix by world and difficulty. Ties are broken by a seeded shuffle of ids, so
 * the result does not depend on input order.
 */

export const Curated = Trajectory.extend({ kept: z.boolean(), filter_reasons: z.array(z.string()) });
export type Curated = z.infer<typeof Curated>;

export const FilterParams = z.object({
  require_pass: z.boolean().default(true),
  min_turns: z.number().int().min(0).default(1),
  max_turns: z.number().int().min(1).default(64),
  max_chars: z.number().int().min(1).default(32_000),
  dedup: z.enum(['task', 'global', 'off']).default('task'),
  max_per_task: z.number().int().min(1).nullable().default(null),
  /**
   * Trajectories kept per task (k of "SFT on 1 vs k trajectories per task"); overrides max_per_task. Distinct
   * solution paths are taken first: a task's rows are ranked by how many earlier rows share their action sequence,
   * so k = 2 keeps two different paths when the task has two, even with dedup 'off'.
   */
  trajectories_per_task: z.number().int().min(1).nullable().default(null),
  /** Relative weights; a world/difficulty not listed is left out when a map is given. Empty = no mix. */
  mix_world: z.record(z.string(), z.number().min(0)).default({}),
  mix_difficulty: z.record(z.string(), z.number().min(0)).default({}),
  /** Upper bound on kept rows after the mix (null = as many as the mix allows). */
  target: z.number().int().min(1).nullable().default(null),
  seed: z.number().int().default(0),
});
export type FilterParams = z.infer<typeof FilterParams>;

/** Tool names with canonical arguments (trimmed strings), in order: two trajectories that act alike share it. */
export function actionSignature(t: Trajectory): string {
  const norm = (v: unknown): unknown => (typeof v === 'string' ? v.trim().toLowerCase() : v);
  return canonicalJson(t.messages.flatMap((m) => m.tool_calls.map((c) => [c.name, c.arguments && Object.fromEntries(Object.entries(c.arguments).map(([k, v]) => [k, norm(v)]))])));
}

const chars = (t: Trajectory) => t.messages.reduce((s, m) => s + m.content.length + m.tool_calls.reduce((a, c) => a + c.raw.length, 0), 0);

function mixQuotas(rows: Curated[], p: FilterParams): void {
  const hasW = Object.keys(p.mix_world).length > 0;
  const hasD = Object.keys(p.mix_difficulty).length > 0;
  if (!hasW && !hasD && p.target === null) return;
  const weight = (r: Curated) => (hasW ? p.mix_world[r.world] ?? 0 : 1) * (hasD ? p.mix_difficulty[String(r.difficulty)] ?? 0 : 1);
  for (const r of rows) if (r.kept && weight(r) === 0) { r.kept = false; r.filter_reasons.push(`mix_excluded: ${r.world}/d${r.difficulty}`); }
  // group only on the dimensions that have a target, so weights are not spread over the other one
  const groups = groupBy(rows.filter((r) => r.kept), (r) => `${hasW ? r.world : '*'}/${hasD ? `d${r.difficulty}` : '*'}`);
  const total = [...groups.values()].reduce((s, g) => s + weight(g[0]), 0);
  // the largest total that every group can fill at its share
  let T = Math.min(...[...groups.values()].map((g) => g.length / (weight(g[0]) / total)));
  if (p.target !== null) T = Math.min(T, p.target);
  for (const [g, rs] of groups) {
    const quota = Math.floor((weight(rs[0]) / total) * T + 1e-9);
    for (const r of rs.slice(quota)) { r.kept = false; r.filter_reasons.push(`mix_quota: ${g} keeps ${quota}`); }
  }
}

export function curate(trajectories: Trajectory[], verdicts: Map<string, Verdict>, p: FilterParams): Curated[] {
  const rng = Rng.derive('filter', p.seed);
  const order = new Map(rng.shuffle([...trajectories].map((t) => t.id).sort()).map((id, i) => [id, i]));
  const rows: Curated[] = [...trajectories].sort((a, b) => order.get(a.id)! - order.get(b.id)!).map((t) => ({ ...t, kept: true, filter_reasons: [] }));
  const reject = (r: Curated, why: string) => { r.kept = false; r.filter_reasons.push(why); };
  for (const r of rows) {
    const v = verdicts.get(r.id);
    if (!v) reject(r, 'no_verdict');
    else if (p.require_pass && !v.pass) reject(r, `verify: ${v.reasons.join(' | ')}`);
    if (r.turns < p.min_turns) reject(r, `too_few_turns: ${r.turns} < ${p.min_turns}`);
    if (r.turns > p.max_turns) reject(r, `too_many_turns: ${r.turns} > ${p.max_turns}`);
    const n = chars(r);
    if (n > p.max_chars) reject(r, `too_long: ${n} chars > ${p.max_chars}`);
  }
  const seen = new Map<string, string>();
  const perTask = new Map<string, number>();
  const cap = p.trajectories_per_task ?? p.max_per_task;
  // rank within a task = how many earlier (seeded order) rows of that task share the action sequence: distinct first
  const occurrences = new Map<string, number>();
  const rank = new Map<string, number>();
  for (const r of rows) {
    const key = `${r.task_id}|${actionSignature(r)}`;
    const n = occurrences.get(key) ?? 0;
    occurrences.set(key, n + 1);
    rank.set(r.id, n);
  }
  const candidates = rows.filter((x) => x.kept).map((r, i) => [r, i] as const).sort((a, b) => rank.get(a[0].id)! - rank.get(b[0].id)! || a[1] - b[1]).map(([r]) => r);
  for (const r of candidates) {
    if (p.dedup !== 'off') {
      const key = `${p.dedup === 'task' ? r.task_id : ''}|${actionSignature(r)}`;
      const first = seen.get(key);
      if (first) { reject(r, `duplicate_of: ${first}`); continue; }
      seen.set(key, r.id);
    }
    const k = (perTask.get(r.task_id) ?? 0) + 1;
    perTask.set(r.task_id, k);
    if (cap !== null && k > cap) { reject(r, `task_cap: ${cap}`); perTask.set(r.task_id, k - 1); }
  }
  mixQuotas(rows, p);
  return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
