import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ledger } from '../../storage/ledger.ts';
import { TableReader } from '../../storage/table.ts';
import { Trajectory, Verdict } from '../../schemas/trajectory.ts';
import { makeTasks } from '../../runtime/worlds/index.ts';
import { hash32 } from '../../runtime/engine/rng.ts';
import { synthJobs } from '../../runtime/synth/synthesize.ts';
import { startLoopback, type Fault } from './loopback-server.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const DAG = 'test/synth/fixtures/openai-synth.dag.ts';
const tasks = ['retail', 'travel'].flatMap((w) => makeTasks(w, { seed: 3, n: 8 }));
const TRANSIENT: Fault[] = ['429', '500', 'timeout', 'truncated', 'malformed', 'reset'];
const fault = (key: string, attempt: number): Fault => {
  const h = hash32(key);
  return attempt === 1 && h % 4 === 0 ? TRANSIENT[h % TRANSIENT.length] : 'ok';
};

/** Runs the CLI on the fixture DAG; kills it (SIGKILL) once `killAfterBatches` synth batches are on disk. */
function cli(store: string, url: string, killAfterBatches?: number): Promise<number | null> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/agentforge.mjs'), 'run', DAG, '--plain'], {
      cwd: ROOT, stdio: 'ignore',
      env: { ...process.env, SYNTH_TASKS: '8', AGENTFORGE_STORE: store, AGENTFORGE_OPENAI_BASE_URL: url, AGENTFORGE_OPENAI_MODEL: 'loopback', AGENTFORGE_OPENAI_API_KEY: 'k' },
    });
    const poll = killAfterBatches === undefined ? undefined : setInterval(() => {
      const dir = join(store, 'checkpoints');
      const n = existsSync(dir) ? readdirSync(dir, { recursive: true }).filter((f) => /\.(ndjson|cols)$/.test(String(f))).length : 0;
      if (n >= killAfterBatches) child.kill('SIGKILL');
    }, 20);
    child.on('exit', (code) => { clearInterval(poll); done(code); });
  });
}

async function table<T>(store: string, node: string, schema: typeof Trajectory | typeof Verdict): Promise<T[]> {
  const ledger = await Ledger.openReadOnly(join(store, 'ledger.duckdb'));
  try {
    const [row] = await ledger.all<{ key: string }>(`SELECT key FROM artifacts WHERE node_id = '${node}' ORDER BY committed_at DESC LIMIT 1`);
    return (await new TableReader(node, row.key, [join(store, 'artifacts', row.key, 'data.parquet')], schema).all()) as T[];
  } finally { await ledger.close(); }
}

describe('synth node over the OpenAI path, killed mid-run and rerun', () => {
  it('loses and duplicates nothing, and matches an uninterrupted run', async () => {
    const lb = await startLoopback({ tasks, fault, latencyMs: 10, hangMs: 1500 });
    const ref = mkdtempSync(join(tmpdir(), 'af-synth-ref-'));
    const victim = mkdtempSync(join(tmpdir(), 'af-synth-kill-'));
    try {
      expect(await cli(ref, lb.url)).toBe(0);
      const refKeys = lb.attempts.size;
      expect(await cli(victim, lb.url, 2)).not.toBe(0); // killed with ≥ 2 of 8 batches durable
      const durable = readdirSync(join(victim, 'checkpoints'), { recursive: true }).filter((f) => /\.(ndjson|cols)$/.test(String(f))).length;
      expect(durable).toBeGreaterThanOrEqual(2);
      expect(durable).toBeLessThan(8); // the kill landed inside the synth node, not after it
      const before = new Map(lb.attempts);
      expect(await cli(victim, lb.url)).toBe(0);
      const rerunKeys = [...lb.attempts].filter(([k, n]) => n > (before.get(k) ?? 0)).length;
      const want = synthJobs(tasks, 2, 1).map((j) => j.id).sort();
      const got = await table<Trajectory>(victim, 'synth', Trajectory);
      expect(got.map((t) => t.id).sort()).toEqual(want);
      expect(new Set(got.map((t) => t.id)).size).toBe(want.length);
      expect(got).toEqual(await table<Trajectory>(ref, 'synth', Trajectory));
      const verdicts = await table<Verdict>(victim, 'verify', Verdict);
      expect(verdicts.filter((v) => !v.pass).map((v) => v.reasons)).toEqual([]);
      // the rerun resumed: the ≥ 8 trajectories (≥ 3 requests each) of the durable batches were not requested again
      expect(rerunKeys).toBeLessThanOrEqual(refKeys - 8 * 3);
    } finally {
      await lb.close();
      rmSync(ref, { recursive: true, force: true });
      rmSync(victim, { recursive: true, force: true });
    }
  }, 180_000);
});
