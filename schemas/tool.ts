import { z } from 'zod';

/** OpenAI function-calling tool spec. `parameters` is a JSON Schema whose shape varies per tool, so it stays JSON. */
export const ToolSpec = z.object({
  type: z.literal('function').default('function'),
  function: z.object({
    name: z.string().min(1),
    description: z.string().default(''),
    parameters: z.record(z.string(), z.unknown()).default({ type: 'object', properties: {} }),
  }),
});
export type ToolSpec = z.infer<typeof ToolSpec>;
