/* The zod request schemas (runtime/node/requests.ts) and the Python Request dataclasses must agree field by field. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { runNode } from '../../runtime/node/client.ts';
import { NODE_REQUESTS } from '../../runtime/node/requests.ts';
import { python } from './helpers.ts';

type Described = Record<string, Record<string, { required: boolean; type: string }>>;

/** The Python type string (as agentforge_node.protocol._type_name writes it) a zod schema corresponds to. */
function pyType(s: z.ZodType): string {
  const def = (s as unknown as { def: { type: string; innerType?: z.ZodType; element?: z.ZodType } }).def;
  switch (def.type) {
    case 'optional': case 'default': return pyType(def.innerType!);
    case 'nullable': return `${pyType(def.innerType!)} | null`;
    case 'string': return 'str';
    case 'boolean': return 'bool';
    case 'number': return (s as z.ZodNumber).isInt ? 'int' : 'float';
    case 'array': return `list[${pyType(def.element!)}]`;
    case 'record': case 'object': return 'dict';
    default: return def.type;
  }
}

describe('runtime node protocol', () => {
  it('every zod request schema matches its Python dataclass (names, required-ness, types)', async () => {
    const { commands } = await runNode<{ commands: Described }>('describe', {}, { python: await python() });
    for (const [cmd, schema] of Object.entries(NODE_REQUESTS)) {
      expect(commands[cmd], `Python command ${cmd} is missing`).toBeDefined();
      const zodFields = Object.fromEntries(Object.entries((schema as z.ZodObject).shape).map(([k, v]) =>
        [k, { required: !(v as z.ZodType).safeParse(undefined).success, type: pyType(v as z.ZodType) }]));
      expect(zodFields, `request fields of ${cmd}`).toEqual(commands[cmd]);
    }
  }, 60_000);
});
