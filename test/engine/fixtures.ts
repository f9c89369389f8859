import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { model, operator, report, table } from '../../runtime/engine/operator.ts';

export function tempStore(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'af-store-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const Num = z.object({ i: z.number().int(), v: z.number() });
export const Text = z.object({ s: z.string() });

/** Counts executions per operator name so tests can see what actually ran. */
export const calls: Record<string, number> = {};
const bump = (n: string) => { calls[n] = (calls[n] ?? 0) + 1; };

export const numbers = operator({
  name: 'test-numbers', version: 1,
  params: z.object({ n: z.number().int().min(0), scale: z.number().default(1) }),
  inputs: {}, output: table(Num, 'Num'),
  async run({ params, out }) { bump('numbers'); await out.write(Array.from({ length: params.n }, (_, i) => ({ i, v: i * params.scale }))); },
});

export const double = operator({
  name: 'test-double', version: 1, params: z.object({}),
  inputs: { xs: table(Num, 'Num') }, output: table(Num, 'Num'),
  async run({ inputs, out }) { bump('double'); await out.write((await inputs.xs.all()).map((r) => ({ i: r.i, v: r.v * 2 }))); },
});

export const total = operator({
  name: 'test-total', version: 1, params: z.object({}),
  inputs: { xs: table(Num, 'Num') }, output: report(z.object({ sum: z.number() }), 'Sum'),
  async run({ inputs }) { bump('total'); const [r] = await inputs.xs.query<{ s: number }>('SELECT sum(v)::DOUBLE AS s FROM {table}'); return { sum: r.s ?? 0 }; },
});

export const texts = operator({
  name: 'test-texts', version: 1, params: z.object({}), inputs: {}, output: table(Text, 'Text'),
  async run({ out }) { await out.write([{ s: 'a' }]); },
});

export const makeModel = operator({
  name: 'test-model', version: 1, params: z.object({}), inputs: {}, output: model(),
  async run() {},
});

/** Emits a row that breaks the schema at a known row index and field. */
export const badRows = operator({
  name: 'test-bad-rows', version: 1, params: z.object({}), inputs: {}, output: table(Num, 'Num'),
  async run({ out }) { await out.write([{ i: 0, v: 1 }, { i: 1, v: 2 }, { i: 2, v: 'x' as unknown as number }]); },
});

export const failing = operator({
  name: 'test-failing', version: 1, params: z.object({}), inputs: { xs: table(Num, 'Num') }, output: table(Num, 'Num'),
  async run() { throw new Error('boom on purpose'); },
});
