/*
 * pick-merge: keeps the merge candidate (TIES, task arithmetic, DARE, … of the same experts) that did best on
 * held-out tasks. Reads an eval-summary table of the candidates (one label per candidate, in the order of the
 * `candidates` input) and copies the winner's directory. The score is the mean over worlds of held-out success, so
 * each domain weighs the same however many tasks it has; a tie goes to the higher mean reward (partial credit, e.g.
 * the share of hidden tests passed), then to the earlier label. Every candidate's score is kept: in pick.json beside
 * the weights, and in the ledger's metrics (`agentforge sql "select name, value from metrics where name like 'pick/%'"`);
 * the summary table itself is what SQL reads per world.
 */
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { many, model, operator, table } from '../runtime/engine/operator.ts';
import { EvalRow } from '../schemas/eval.ts';
import { groupBy } from '../runtime/engine/collections.ts';

export interface Candidate { label: string; score: number; reward: number; worlds: Record<string, { success: number; mean_reward: number; tasks: number }> }

/** Candidates scored from summary rows, best first (the order the docstring gives). */
export function rankCandidates(labels: string[], rows: EvalRow[], where: string): Candidate[] {
  const byLabel = groupBy(rows, (r) => r.model);
  const scored = labels.map((label, i) => {
    const rs = byLabel.get(label);
    if (!rs?.length) throw new Error(`pick-merge: the summary (${where}) has no row for candidate '${label}' (it has: ${[...byLabel.keys()].join(', ') || 'none'}); evaluate every candidate under its label`);
    const mean = (f: (r: EvalRow) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
    const worlds = Object.fromEntries(rs.map((r) => [r.world, { success: r.success, mean_reward: r.mean_reward, tasks: r.tasks }]));
    return { i, c: { label, score: mean((r) => r.success), reward: mean((r) => r.mean_reward), worlds } };
  });
  const worldSets = new Set(scored.map((s) => Object.keys(s.c.worlds).sort().join(',')));
  if (worldSets.size > 1) throw new Error(`pick-merge: candidates were evaluated on different worlds (${[...worldSets].join(' | ')}) in ${where}; evaluate them on the same tasks`);
  scored.sort((a, b) => b.c.score - a.c.score || b.c.reward - a.c.reward || a.i - b.i);
  return scored.map((s) => s.c);
}

export const pickMerge = operator({
  name: 'pick-merge',
  version: 1,
  description: 'the merge candidate with the best mean held-out success over worlds (ties: mean reward), copied; all scores recorded',
  params: z.object({ labels: z.array(z.string().min(1)).min(1).describe('one per candidate, as labelled in the summary') }),
  inputs: { summary: table(EvalRow, 'EvalRow'), candidates: many(model()) },
  output: model(),
  async run({ params, inputs, out, ctx }) {
    if (new Set(params.labels).size !== params.labels.length) throw new Error(`pick-merge: labels must be distinct, got ${params.labels.join(', ')}`);
    if (params.labels.length !== inputs.candidates.length) {
      throw new Error(`pick-merge: ${inputs.candidates.length} candidates but ${params.labels.length} labels (${params.labels.join(', ')}); give one label per candidate`);
    }
    const ranked = rankCandidates(params.labels, await inputs.summary.all(), `node ${inputs.summary.node}`);
    const best = ranked[0];
    const dir = inputs.candidates[params.labels.indexOf(best.label)];
    cpSync(dir.dir, out.dir, { recursive: true, filter: (src) => !src.slice(dir.dir.length).split('/').some((p) => p.startsWith('.')) });
    writeFileSync(join(out.dir, 'pick.json'), JSON.stringify({ chosen: best.label, from: { node: dir.node, key: dir.key },
      by: 'mean held-out success over worlds, then mean reward, then label order', candidates: ranked }, null, 2));
    for (const c of ranked) {
      ctx.metric(`pick/${c.label}/success`, c.score);
      ctx.metric(`pick/${c.label}/chosen`, c.label === best.label ? 1 : 0);
    }
    ctx.log(`pick-merge: ${best.label} (${ranked.map((c) => `${c.label} ${(c.score * 100).toFixed(1)}%`).join(', ')})`);
  },
});
