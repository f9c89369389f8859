import { z } from 'zod';
import { operator, table } from '../../runtime/engine/operator.ts';
import { Episode } from '../../schemas/smoke.ts';
import { mulberry32, rowSeed } from '../../runtime/engine/rng.ts';

const WORLDS = ['retail', 'travel', 'bank'];
const TOOLS = ['search', 'get', 'update', 'cancel', 'confirm'];

/** Deterministic synthetic episodes, written in durable batches so a killed run resumes where it stopped. */
export const generateEpisodes = operator({
  name: 'generate-episodes',
  version: 1,
  params: z.object({ n: z.number().int().min(0).default(5000), seed: z.number().int().default(1), batch: z.number().int().min(1).default(500), delayMs: z.number().min(0).default(0) }),
  inputs: {},
  output: table(Episode, 'Episode'),
  async run({ params, out, ctx }) {
    const batches = Math.ceil(params.n / params.batch);
    ctx.progress.total(params.n, 'episodes');
    for (let b = 0; b < batches; b++) {
      const lo = b * params.batch;
      const hi = Math.min(params.n, lo + params.batch);
      if (out.hasBatch(String(b))) { ctx.progress.tick(hi - lo); continue; }
      const rows: Episode[] = [];
      for (let i = lo; i < hi; i++) {
        const rnd = mulberry32(rowSeed(params.seed, i));
        const turns = 1 + Math.floor(rnd() * 6);
        const calls = Array.from({ length: turns }, (_, t) => ({ name: TOOLS[Math.floor(rnd() * TOOLS.length)], ok: rnd() > 0.15, args: { turn: t, id: `o${Math.floor(rnd() * 1000)}` } }));
        rows.push({ id: `ep-${i}`, world: WORLDS[i % WORLDS.length], turns, calls, success: calls.every((c) => c.ok), tokens: 40 + Math.floor(rnd() * 400) });
      }
      if (params.delayMs) await new Promise((r) => setTimeout(r, params.delayMs));
      await out.writeBatch(String(b), rows);
      ctx.progress.tick(rows.length);
    }
  },
});
