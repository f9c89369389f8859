/* Forwards the node's protocol events into an operator's context: metrics -> ledger, progress, logs. */
import type { OperatorContext } from '../operator.ts';
import type { NodeEvent } from './client.ts';

/**
 * The node code an operator's key depends on: the Python package and its pinned requirements. Its tests and
 * benchmark scripts stay out, so editing them never recomputes a trained model.
 */
export const NODE_CODE = ['runtime/gpu/agentforge_node', 'runtime/gpu/requirements.txt'];

export function forwardEvents(ctx: OperatorContext): (e: NodeEvent) => void {
  let declared: string | undefined;
  return (e) => {
    if (e.event === 'metric') ctx.metric(e.name, e.value, e.step ?? undefined);
    else if (e.event === 'log') ctx.log(e.message);
    else if (e.event === 'progress') {
      const key = `${e.total}:${e.unit}`;
      if (e.total !== null && declared !== key) { ctx.progress.total(e.total, e.unit); declared = key; }
      ctx.progress.set(e.done);
    }
  };
}
