import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { dagStatus } from '../../runtime/engine/status.ts';
import { Ledger } from '../../storage/ledger.ts';
import { Store } from '../../storage/store.ts';
import { TableReader } from '../../storage/table.ts';
import { ScoredEpisode } from '../../schemas/smoke.ts';
import { mulberry32 } from '../../runtime/engine/rng.ts';
import { tempStore } from './fixtures.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const ENV = { ...process.env, SMOKE_N: '3000', SMOKE_DELAY_MS: '100' };

/** Starts the CLI on the smoke DAG and SIGKILLs it after `ms` (or lets it finish). */
function runAndKill(storeDir: string, ms: number, extra: string[]): Promise<number | null> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/agentforge.mjs'), 'run', 'dags/smoke.ts', '--plain', ...extra],
      { cwd: ROOT, env: { ...ENV, AGENTFORGE_STORE: storeDir }, stdio: 'ignore' });
    const t = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (code) => { clearTimeout(t); done(code); });
  });
}

async function tableRows(storeDir: string, node: string) {
  const ledger = await Ledger.openReadOnly(join(storeDir, 'ledger.duckdb'));
  try {
    const [row] = await ledger.all<{ key: string }>(`SELECT key FROM artifacts WHERE node_id = '${node}' ORDER BY committed_at DESC LIMIT 1`);
    return new TableReader('x', row.key, [join(storeDir, 'artifacts', row.key, 'data.parquet')], ScoredEpisode).all();
  } finally { await ledger.close(); }
}

describe('crash safety', () => {
  it('survives SIGKILL at 20 random moments: the store opens, status is truthful, a rerun gives identical tables', async () => {
    process.env.SMOKE_N = ENV.SMOKE_N;
    process.env.SMOKE_DELAY_MS = ENV.SMOKE_DELAY_MS;
    const { default: smoke } = await import('../../dags/smoke.ts');
    const ref = tempStore();
    const victim = tempStore();
    try {
      expect((await runDag(smoke, { storeDir: ref.dir })).ok).toBe(true);
      // Kill moments scale with how long an uninterrupted CLI run takes on this machine right now.
      const probe = tempStore();
      const t0 = Date.now();
      await runAndKill(probe.dir, 600_000, []);
      const full = Date.now() - t0;
      probe.cleanup();
      const rnd = mulberry32(20261125);
      let partial = 0;
      for (let i = 0; i < 20; i++) {
        const ms = Math.floor(full * (0.15 + 0.85 * rnd()));
        await runAndKill(victim.dir, ms, i % 3 === 2 ? ['--from', 'episodes'] : []);
        const status = await dagStatus(smoke, victim.dir);
        // Landed mid-work: some nodes committed and some not, or a node left resumable batches behind.
        const batches = readdirSync(join(victim.dir, 'checkpoints'), { recursive: true }).some((f) => /\.(ndjson|cols)$/.test(String(f)));
        if (new Set(status.map((x) => x.state)).size > 1 || batches) partial++;
        const ledger = await Ledger.openReadOnly(join(victim.dir, 'ledger.duckdb'));
        try {
          const store = new Store(victim.dir);
          for (const s of status.filter((x) => x.state === 'fresh')) {
            const a = (await ledger.artifact(s.key))!;
            expect(() => store.verify(a.key, a.files, a.node_id)).not.toThrow();
          }
        } finally { await ledger.close(); }
      }
      console.error(`crash test: ${partial}/20 kills landed mid-work`);
      expect(partial).toBeGreaterThan(0); // some kills landed mid-work, not only before or after the run
      const final = await runDag(smoke, { storeDir: victim.dir });
      expect(final.ok).toBe(true);
      expect(await tableRows(victim.dir, 'kept')).toEqual(await tableRows(ref.dir, 'kept'));
      expect(await tableRows(victim.dir, 'scored')).toEqual(await tableRows(ref.dir, 'scored'));
      const summaryKey = final.nodes.get('summary')!.key;
      expect(readFileSync(join(victim.dir, 'artifacts', summaryKey, 'report.json'), 'utf8'))
        .toBe(readFileSync(join(ref.dir, 'artifacts', summaryKey, 'report.json'), 'utf8'));
    } finally {
      ref.cleanup();
      victim.cleanup();
    }
  }, 300_000);
});
