/*
 * A dead or flaky teacher endpoint is never cached as data. Real HTTP on 127.0.0.1 (the loopback
 * OpenAI-compatible server, and a closed port), real DAG runs on a real store:
 *  - endpoint down: the synthesize node fails, naming the endpoint and the first errors, and commits nothing;
 *    when the server is back, the rerun synthesizes everything (it is not a no-op over cached errors);
 *  - nothing listening: the same, with the connection error;
 *  - a few episodes failing (under max_error_rate): the node commits and the failed rows stay queryable;
 *  - retries under a node signal raise no MaxListenersExceededWarning.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { dag } from '../../runtime/engine/dag.ts';
import { operator, table } from '../../runtime/engine/operator.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { TableReader } from '../../storage/table.ts';
import { Task } from '../../schemas/task.ts';
import { Trajectory } from '../../schemas/trajectory.ts';
import { makeTasks } from '../../runtime/worlds/index.ts';
import { synthesize } from '../../operators/synthesize.ts';
import { verify } from '../../operators/verify.ts';
import { openAIChatPolicy } from '../../runtime/agent/engines/openai-chat.ts';
import { scriptedUser } from '../../runtime/agent/scripted.ts';
import { synthesize as synthesizeAll } from '../../runtime/synth/synthesize.ts';
import { startLoopback, type Fault, type Loopback } from './loopback-server.ts';

const tasks = makeTasks('retail', { seed: 41, n: 10 });
const fixedTasks = operator({
  name: 'test-fixed-tasks', version: 1, params: z.object({}), inputs: {}, output: table(Task, 'Task'),
  async run({ out }) { await out.write(tasks); },
});
const openai = { max_retries: 1, backoff_ms: 1, timeout_ms: 5_000 };
const synthDag = (name: string, seed = 1) => dag(name, (b) => {
  const t = b.node('tasks', fixedTasks, {});
  b.node('verify', verify, {}, { trajectories: b.node('synth', synthesize, { per_task: 2, seed, teacher: 'openai', concurrency: 4, batch_size: 4, openai }, { tasks: t }), tasks: t });
});

let store: string;
let lb: Loopback;
let mode: (key: string) => Fault = () => 'ok';
const env = { ...process.env };
beforeAll(async () => {
  store = mkdtempSync(join(tmpdir(), 'af-dead-endpoint-'));
  lb = await startLoopback({ tasks, fault: (key) => mode(key) });
});
afterAll(async () => {
  await lb.close();
  rmSync(store, { recursive: true, force: true });
  process.env = env;
});
const useEndpoint = (url: string) => { process.env.AGENTFORGE_OPENAI_BASE_URL = url; process.env.AGENTFORGE_OPENAI_MODEL = 'loopback'; };
const rows = (key: string): Promise<Trajectory[]> => new TableReader('synth', key, [join(store, 'artifacts', key, 'data.parquet')], Trajectory).all() as Promise<Trajectory[]>;

describe('synthesize against a dead or flaky endpoint', () => {
  it('fails without committing while the endpoint is down, and the rerun after it is back synthesizes everything', async () => {
    useEndpoint(lb.url);
    mode = () => '500';
    const d = synthDag('dead_then_back');
    const down = await runDag(d, { storeDir: store });
    const node = down.nodes.get('synth')!;
    expect(down.ok).toBe(false);
    expect(node.status).toBe('failed');
    expect(node.error).toContain(lb.url);
    expect(node.error).toMatch(/max_error_rate 20%.*First errors: retail-train-\d+:s\d: .*500/);
    mode = () => 'ok';
    const back = await runDag(d, { storeDir: store });
    expect(back.ok).toBe(true);
    expect(back.nodes.get('synth')!.status).toBe('committed');
    const out = await rows(back.nodes.get('synth')!.key);
    expect(out).toHaveLength(20);
    expect(out.filter((t) => t.errors.some((e) => e.kind === 'teacher_error'))).toEqual([]);
  }, 60_000);

  it('fails naming the endpoint when nothing listens on its port', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
    });
    const url = `http://127.0.0.1:${port}/v1`;
    useEndpoint(url);
    const r = await runDag(synthDag('nothing_listens'), { storeDir: store });
    expect(r.nodes.get('synth')!.status).toBe('failed');
    expect(r.nodes.get('synth')!.error).toContain(url);
    expect(r.nodes.get('synth')!.error).toMatch(/Connection error/i);
  }, 60_000);

  it('under max_error_rate the node commits and the failed episodes stay queryable', async () => {
    useEndpoint(lb.url);
    const broken = tasks[3].id;
    mode = (key) => (key.startsWith(`${broken}:`) ? '500' : 'ok');
    const r = await runDag(synthDag('a_few_fail', 5), { storeDir: store });
    expect(r.ok).toBe(true);
    const out = await rows(r.nodes.get('synth')!.key);
    expect(out).toHaveLength(20);
    const failed = out.filter((t) => t.errors.some((e) => e.kind === 'teacher_error'));
    expect(failed.map((t) => t.id).sort()).toEqual([`${broken}:s5`, `${broken}:s6`]);
    expect(failed.every((t) => t.finish_reason === 'error')).toBe(true);
    // the endpoint is back: the next run redoes the failed episodes' batches (the others resume) and commits clean
    mode = () => 'ok';
    const before = lb.requests;
    const again = await runDag(synthDag('a_few_fail', 5), { storeDir: store });
    expect(again.nodes.get('synth')!.status).toBe('committed');
    expect(again.nodes.get('verify')!.status).toBe('committed'); // downstream reran on the new rows
    const fixed = await rows(again.nodes.get('synth')!.key);
    expect(fixed.map((t) => t.id).sort()).toEqual(out.map((t) => t.id).sort());
    expect(fixed.filter((t) => t.errors.length)).toEqual([]);
    expect(lb.requests - before).toBeLessThan(lb.requests / 2); // only the redone batch went to the endpoint
    expect((await runDag(synthDag('a_few_fail', 5), { storeDir: store })).nodes.get('synth')!.status).toBe('cached');
  }, 60_000);

  it('retries under a node signal raise no MaxListenersExceededWarning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    mode = (key) => (lb.attempts.get(key)! <= 3 ? '500' : 'ok');
    try {
      const teacher = openAIChatPolicy({ baseURL: lb.url, model: 'm', backoffMs: 1, maxBackoffMs: 2 });
      const written: unknown[] = [];
      await synthesizeAll({
        tasks: tasks.slice(0, 6), perTask: 2, seed: 1, batchSize: 4, concurrency: 2, signal: new AbortController().signal,
        sink: { has: () => false, write: async (_id, r) => { written.push(...r); } }, teacher: () => teacher, user: scriptedUser,
      });
      await new Promise((r) => setTimeout(r, 20)); // warnings are emitted on the next tick
      expect(written).toHaveLength(12);
      expect(teacher.stats.retries).toBeGreaterThan(20);
      expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      mode = () => 'ok';
    }
  }, 60_000);
});
