/* A tiny trajectory source for DAG tests (its own module, so its cache key sees only what it imports). */
import { z } from 'zod';
import { operator, table } from '../../runtime/engine/operator.ts';
import { Trajectory } from '../../schemas/trajectory.ts';
import { randomConversation } from '../fixtures/conversations.ts';

export const conversations = operator({
  name: 'test-gpu-conversations', version: 1, params: z.object({ n: z.number().int().default(24) }), inputs: {},
  output: table(Trajectory),
  async run({ params, out }) {
    await out.write(Array.from({ length: params.n }, (_, i) => {
      const c = randomConversation(i);
      return { id: `t${i}`, task_id: `task${i % 6}`, world: 'test', messages: c.messages, tools: c.tools, source: 'synth',
        teacher: 'fixture', seed: i, turns: c.messages.length, finish_reason: 'answered' as const };
    }));
  },
});
