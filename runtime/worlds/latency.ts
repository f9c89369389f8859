/*
 * Tool latency: real tools take time (an API call, a database, a sandbox), and asynchronous RL is worth most when
 * episodes wait on them. Any world can be given a latency model per tool call: 'fixed' (ms every call) or
 * 'lognormal' (median ms, log-space sigma). The delay of a call is a function of (seed, episode, turn, call), so a
 * rerun waits the same. The episode loop (runtime/agent/loop.ts) sleeps it before running the call; it counts as
 * environment time.
 */
import { z } from 'zod';
import { derive, mulberry32 } from '../engine/rng.ts';

export const LatencyParams = z.object({
  kind: z.enum(['none', 'fixed', 'lognormal']).default('none'),
  /** fixed: every call; lognormal: the median. */
  ms: z.number().min(0).default(0),
  /** lognormal: standard deviation of ln(delay). */
  sigma: z.number().min(0).default(0.5),
  seed: z.number().int().default(0),
});
export type LatencyParams = z.output<typeof LatencyParams>;

/** Milliseconds a call waits: `key` names the call (episode id, turn, index). */
export type ToolLatency = (key: string) => number;

export function toolLatency(p: LatencyParams): ToolLatency | undefined {
  if (p.kind === 'none' || p.ms <= 0) return undefined;
  if (p.kind === 'fixed') return () => p.ms;
  return (key) => {
    const r = mulberry32(derive('tool-latency', p.seed, key));
    // Box-Muller on two uniforms in (0, 1]
    const z = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    return p.ms * Math.exp(p.sigma * z);
  };
}
