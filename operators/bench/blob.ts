import { z } from 'zod';
import { operator, table } from '../../runtime/engine/operator.ts';

const Blob = z.object({ i: z.number().int(), payload: z.string() });

/** A table of `rows` rows of `width` characters, optionally derived from an upstream blob: sizes artifacts for bench/engine.ts. */
export const blob = operator({
  name: 'bench-blob',
  version: 1,
  params: z.object({ rows: z.number().int().min(1), width: z.number().int().min(1).default(100), salt: z.string() }),
  inputs: {},
  output: table(Blob, 'Blob'),
  async run({ params, out }) {
    const pad = params.salt.repeat(Math.ceil(params.width / Math.max(1, params.salt.length))).slice(0, params.width);
    await out.write(Array.from({ length: params.rows }, (_, i) => ({ i, payload: `${i}:${pad}` })));
  },
});
