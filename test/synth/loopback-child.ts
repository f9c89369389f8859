/*
 * The loopback server as its own process (so a bench's client and server do not share one event loop).
 * Env: LOOPBACK_LATENCY_MS, LOOPBACK_ERROR_RATE (share of first attempts answered 500), LOOPBACK_WORLD/SEED/N for
 * the tasks it can answer. Prints the base URL as one line on stdout, exits when stdin closes.
 */
import { makeTasks } from '../../runtime/worlds/index.ts';
import { hash32 } from '../../runtime/engine/rng.ts';
import { startLoopback } from './loopback-server.ts';

const env = process.env;
const tasks = makeTasks(env.LOOPBACK_WORLD ?? 'retail', { seed: Number(env.LOOPBACK_SEED ?? 11), n: Number(env.LOOPBACK_N ?? 10) });
const rate = Number(env.LOOPBACK_ERROR_RATE ?? 0);
const lb = await startLoopback({
  tasks, latencyMs: Number(env.LOOPBACK_LATENCY_MS ?? 0),
  fault: (key, attempt) => (attempt === 1 && (hash32(key) % 10_000) / 10_000 < rate ? '500' : 'ok'),
});
process.stdout.write(`${lb.url}\n`);
process.stdin.resume();
process.stdin.on('end', () => { void lb.close().then(() => process.exit(0)); });
