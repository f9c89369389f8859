import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Trajectory } from '../../schemas/trajectory.ts';
import { makeTasks } from '../../runtime/worlds/index.ts';
import { hash32 } from '../../runtime/engine/rng.ts';
import { openAIChatPolicy, parseArguments } from '../../runtime/agent/engines/openai-chat.ts';
import { scriptedTeacher, scriptedUser } from '../../runtime/agent/scripted.ts';
import { llmUser } from '../../runtime/synth/llm-user.ts';
import { synthesize, synthJobs, type BatchSink } from '../../runtime/synth/synthesize.ts';
import { verifyTrajectory } from '../../runtime/worlds/verify.ts';
import { startLoopback, type Fault, type Loopback } from './loopback-server.ts';

const tasks = [...makeTasks('retail', { seed: 31, n: 10 }), ...makeTasks('bank', { seed: 31, n: 10 })];
const TRANSIENT: Fault[] = ['429', '500', 'timeout', 'truncated', 'malformed', 'reset'];
/** Each key fails once or twice with a transient fault (chosen by hash), then succeeds; some keys break tool JSON. */
function fault(key: string, attempt: number): Fault {
  const h = hash32(key);
  if (key.includes(':s2:') && key.endsWith(':a0') && h % 3 === 0) return 'bad_args';
  if (attempt <= 1 + (h % 2) && h % 5 !== 0) return TRANSIENT[(h + attempt) % TRANSIENT.length];
  return 'ok';
}

class MemorySink implements BatchSink {
  batches = new Map<string, Trajectory[]>();
  has(id: string) { return this.batches.has(id); }
  async write(id: string, rows: Trajectory[]) {
    if (this.batches.has(id)) throw new Error(`batch ${id} written twice`);
    this.batches.set(id, rows);
  }
  rows() { return [...this.batches.keys()].sort().flatMap((k) => this.batches.get(k)!); }
}

let lb: Loopback;
beforeAll(async () => { lb = await startLoopback({ tasks, fault, hangMs: 2500 }); });
afterAll(async () => { await lb.close(); });

const policy = () => openAIChatPolicy({ baseURL: lb.url, model: 'loopback', apiKey: 'test', timeoutMs: 1000, backoffMs: 5, maxBackoffMs: 50 });

async function run(useLlmUser: boolean) {
  const teacher = policy();
  const userPolicy = policy();
  const sink = new MemorySink();
  await synthesize({
    tasks, perTask: 2, seed: 1, batchSize: 7, concurrency: 8, sink,
    teacher: () => teacher, user: (t) => (useLlmUser ? llmUser(userPolicy, t) : scriptedUser(t)),
  });
  return { rows: sink.rows(), stats: teacher.stats };
}

describe('OpenAI-compatible teacher against a faulty loopback server', () => {
  it('retries every transient fault: zero lost, zero duplicated, identical to the offline run', async () => {
    const { rows, stats } = await run(false);
    const jobs = synthJobs(tasks, 2, 1);
    expect(rows.map((r) => r.id)).toEqual(jobs.map((j) => j.id));
    expect(Object.keys(stats.byCause).sort()).toEqual(['connection', 'http_429', 'http_500', 'malformed', 'timeout', 'transport'].sort());
    expect(stats.failures).toBe(0);
    // every request key was answered at least once; a key may be served twice only if a slow success hit the timeout
    for (const key of lb.attempts.keys()) expect(lb.served.get(key) ?? 0, key).toBeGreaterThanOrEqual(1);
    for (const r of rows) {
      const task = tasks.find((t) => t.id === r.task_id)!;
      const broken = r.errors.some((e) => e.kind === 'invalid_json_args');
      const offline = await import('./helpers.ts').then((h) => h.episode(task, r.seed, { rate: 0 }, scriptedTeacher(task, r.seed)));
      if (broken) {
        expect(verifyTrajectory(r, task).reasons.join('\n')).toMatch(/invalid_json_args/);
      } else {
        expect({ ...r, teacher: 'x' }).toEqual({ ...offline, teacher: 'x' });
        expect(verifyTrajectory(r, task).pass).toBe(true);
      }
    }
    expect(rows.some((r) => r.errors.some((e) => e.kind === 'invalid_json_args'))).toBe(true);
  }, 60_000);

  it('plays the user through the same endpoint (role-flipped) with the same outcome', async () => {
    const { rows } = await run(true);
    const passed = rows.filter((r) => verifyTrajectory(r, tasks.find((t) => t.id === r.task_id)!).pass).length;
    const broken = rows.filter((r) => r.errors.length).length;
    expect(rows.length).toBe(40);
    expect(passed + broken).toBe(40);
    expect(passed).toBeGreaterThan(30);
  }, 60_000);

  it('fails fast on a 4xx, and records a trajectory with teacher_error when retries run out', async () => {
    const bad = await startLoopback({ tasks, fault: () => '500' });
    const teacher = openAIChatPolicy({ baseURL: bad.url, model: 'm', maxRetries: 2, backoffMs: 1 });
    const sink = new MemorySink();
    await synthesize({ tasks: tasks.slice(0, 2), perTask: 1, seed: 1, batchSize: 10, concurrency: 2, sink, teacher: () => teacher, user: scriptedUser });
    expect(sink.rows().map((r) => [r.finish_reason, r.errors[0].kind])).toEqual([['error', 'teacher_error'], ['error', 'teacher_error']]);
    expect(bad.requests).toBe(6);
    await bad.close();
    const clean = await startLoopback({ tasks });
    const t400 = openAIChatPolicy({ baseURL: clean.url, model: 'm', backoffMs: 1 });
    await expect(t400.respond({ messages: [], tools: [], idempotencyKey: 'no-such-task' })).rejects.toThrow(/400 unknown idempotency key/);
    expect(t400.stats).toMatchObject({ requests: 1, retries: 0, failures: 1 });
    await clean.close();
  });

  it('parses tool-call arguments: objects only, raw text kept', () => {
    expect(parseArguments('{"a":1}')).toEqual({ a: 1 });
    expect(parseArguments('')).toEqual({});
    for (const bad of ['{"a":', '[1]', '"x"', 'null', 'nan']) expect(parseArguments(bad)).toBeNull();
  });
});
