import type { z } from 'zod';
import type { Trajectory } from '../schemas/trajectory.ts';
import { mulberry32 } from '../runtime/engine/rng.ts';

/** A realistic 5-message tool-use trajectory (system, user, assistant+call, tool, assistant). */
export function makeTrajectory(i: number): z.input<typeof Trajectory> {
  const r = mulberry32(i);
  const order = `#W${1000 + Math.floor(r() * 9000)}`;
  return {
    id: `traj-${i}`, task_id: `retail-train-${i % 5000}`, world: ['retail', 'travel', 'bank'][i % 3],
    messages: [
      { role: 'system', content: 'You are a retail agent. Follow the policy. Confirm before cancelling.' },
      { role: 'user', content: `Please cancel order ${order}, it was a mistake.` },
      { role: 'assistant', content: '', tool_calls: [{ id: `c${i}`, name: 'cancel_order', arguments: { order_id: order, reason: 'ordered by mistake' }, raw: `{"order_id":"${order}","reason":"ordered by mistake"}` }] },
      { role: 'tool', content: `{"order_id":"${order}","status":"cancelled"}`, tool_call_id: `c${i}`, name: 'cancel_order' },
      { role: 'assistant', content: `Order ${order} is cancelled.` },
    ],
    tools: [],
    source: 'scripted', teacher: 'planner', seed: i, turns: 2, finish_reason: 'answered',
    reward: r() > 0.3 ? 1 : 0, reward_components: { outcome: 1, format: 1 }, difficulty: 1 + (i % 6), split: 'train',
  };
}
