/* Forwards the node's protocol events into an operator's context: metrics -> ledger, progress, logs. */
import type { OperatorContext } from '../engine/operator.ts';
import type { NodeEvent } from './client.ts';

/**
 * The node code an operator's key depends on: the entry module of its command with the package modules it imports
 * (transitively), and the pinned requirements. Editing the merge kernels then never recomputes a trained SFT model,
 * nor editing the node's tests or benchmark scripts anything.
 */
export const nodeCode = (entry: string): string[] =>
  ['runtime/node/agentforge_node/__main__.py', `runtime/node/agentforge_node/${entry}`, 'runtime/node/requirements.txt'];

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
