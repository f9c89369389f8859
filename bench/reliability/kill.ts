/*
 * Reliability: random SIGKILLs of a real `agentforge run` (issue 19). Each trial starts the CLI on the smoke DAG,
 * SIGKILLs it (by its pid; only our own child) at a random moment, then reruns it to completion; the trial is held
 * when the rerun exits 0 and its tables and report are identical to those of an uninterrupted run. Even trials
 * start from an empty store (the killed run is a first run and the rerun resumes its batches); odd trials kill a
 * `--from episodes` rerun over a complete store (committed artifacts being replaced). A trial also fails when the
 * store's lock or `runs` table is left claiming a dead run after the rerun. Default 20 trials (about a minute and a
 * half); AGENTFORGE_KILL_TRIALS=N for more. `run()` is called by the reliability suite.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { mulberry32 } from '../../runtime/engine/rng.ts';
import { Ledger } from '../../storage/ledger.ts';
import { TableReader } from '../../storage/table.ts';
import { ScoredEpisode } from '../../schemas/smoke.ts';

export interface Metric { metric: string; held: number; total: number; detail?: string }

const ROOT = resolve(import.meta.dirname, '../..');
const ENV = { SMOKE_N: '2000', SMOKE_DELAY_MS: '80' };

/** Runs the CLI on the smoke DAG; SIGKILLs it after `killAfterMs` unless it has exited. Resolves with its exit code. */
function cli(store: string, extra: string[], killAfterMs?: number): Promise<number | null> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/agentforge.mjs'), 'run', 'dags/smoke.ts', '--plain', ...extra],
      { cwd: ROOT, env: { ...process.env, ...ENV, AGENTFORGE_STORE: store }, stdio: 'ignore' });
    const t = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('exit', (code) => { clearTimeout(t); done(code); });
  });
}

/** The latest committed tables and report of the smoke DAG in a store, as values to compare. */
async function outputs(store: string) {
  const ledger = await Ledger.openReadOnly(join(store, 'ledger.duckdb'));
  try {
    const latest = async (node: string) => (await ledger.all<{ key: string }>(`SELECT key FROM artifacts WHERE node_id = '${node}' ORDER BY committed_at DESC LIMIT 1`))[0]?.key;
    const table = async (node: string) => {
      const key = await latest(node);
      return key ? JSON.stringify(await new TableReader(node, key, [join(store, 'artifacts', key, 'data.parquet')], ScoredEpisode).all()) : 'missing';
    };
    const summary = await latest('summary');
    const running = await ledger.all<{ n: number }>(`SELECT count(*)::INTEGER AS n FROM runs WHERE status = 'running'`);
    return {
      scored: await table('scored'), kept: await table('kept'),
      summary: summary ? readFileSync(join(store, 'artifacts', summary, 'report.json'), 'utf8') : 'missing',
      running: running[0].n,
    };
  } finally { await ledger.close(); }
}

export async function run(): Promise<Metric[]> {
  const trials = Number(process.env.AGENTFORGE_KILL_TRIALS ?? 20);
  const ref = mkdtempSync(join(tmpdir(), 'af-rel-kill-ref-'));
  let victim = mkdtempSync(join(tmpdir(), 'af-rel-kill-'));
  const failures: string[] = [];
  let held = 0;
  let midWork = 0;
  try {
    const t0 = Date.now();
    if ((await cli(ref, [])) !== 0) throw new Error('the uninterrupted reference run failed');
    const full = Date.now() - t0;
    const want = await outputs(ref);
    const rnd = mulberry32(20261207);
    for (let i = 0; i < trials; i++) {
      const fresh = i % 2 === 0;
      if (fresh) { rmSync(victim, { recursive: true, force: true }); victim = mkdtempSync(join(tmpdir(), 'af-rel-kill-')); }
      const at = Math.floor(full * (0.05 + 0.85 * rnd()));
      const killed = await cli(victim, fresh ? [] : ['--from', 'episodes'], at);
      if (killed === null) midWork++;
      const code = await cli(victim, []);
      const got = await outputs(victim);
      const lockLeft = existsSync(join(victim, 'lock'));
      const same = code === 0 && got.scored === want.scored && got.kept === want.kept && got.summary === want.summary && got.running === 0 && !lockLeft;
      if (same) held++;
      else failures.push(`trial ${i} (kill at ${at} ms${fresh ? ', fresh store' : ', --from episodes'}): rerun exit ${code}` +
        `${got.scored !== want.scored ? ', scored differs' : ''}${got.kept !== want.kept ? ', kept differs' : ''}${got.summary !== want.summary ? ', summary differs' : ''}` +
        `${got.running ? `, ${got.running} run(s) still 'running'` : ''}${lockLeft ? ', lock left behind' : ''}`);
    }
    return [{
      metric: 'sigkill_trials_held', held, total: trials,
      detail: `${midWork}/${trials} kills landed before the run exited (uninterrupted run ${full} ms)${failures.length ? `; ${failures.join('; ')}` : ''}`,
    }];
  } finally {
    rmSync(ref, { recursive: true, force: true });
    rmSync(victim, { recursive: true, force: true });
  }
}

if (process.argv[1] && /reliability[\\/]kill\.ts$/.test(process.argv[1])) {
  for (const m of await run()) console.log(JSON.stringify(m));
}
