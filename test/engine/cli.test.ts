import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempStore } from './fixtures.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const cli = (args: string[], storeDir: string, env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [join(ROOT, 'bin/agentforge.mjs'), ...args], { cwd: ROOT, env: { ...process.env, AGENTFORGE_STORE: storeDir, SMOKE_N: '300', ...env }, encoding: 'utf8' });

describe('agentforge CLI', () => {
  it('runs the smoke DAG, reruns as a no-op, answers sql/status/inspect/runs, exit codes', () => {
    const s = tempStore();
    try {
      const first = cli(['run', 'dags/smoke.ts'], s.dir);
      expect(first.status, first.stderr).toBe(0);
      expect(first.stderr).toMatch(/\[episodes\] committed/);
      const again = cli(['run', 'smoke'], s.dir);
      expect(again.status).toBe(0);
      expect(again.stderr).toMatch(/4 cached/);
      const q = cli(['sql', '--json', 'SELECT world, count(*)::INTEGER AS n FROM episodes GROUP BY 1 ORDER BY 1'], s.dir);
      expect(JSON.parse(q.stdout)).toEqual([{ world: 'bank', n: 100 }, { world: 'retail', n: 100 }, { world: 'travel', n: 100 }]);
      expect(cli(['sql', '--csv', 'SELECT 1 AS a'], s.dir).stdout).toBe('a\n1\n');
      expect(cli(['sql', 'DELETE FROM runs'], s.dir).status).toBe(2);
      expect(cli(['status', 'smoke'], s.dir).stdout).toMatch(/fresh\s+summary/);
      expect(cli(['status', 'smoke'], s.dir, { SMOKE_N: '301' }).stdout).toMatch(/stale\s+episodes[\s\S]*param n: 300 → 301/);
      expect(cli(['inspect', 'kept'], s.dir).stdout).toMatch(/kept: \d+ rows[\s\S]*score\s+DOUBLE/);
      expect(cli(['runs'], s.dir).stdout).toMatch(/smoke\s+ok/);
      const bad = cli(['run', 'smoke', '--from', 'nope'], s.dir);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain("--from nope: DAG 'smoke' has no node 'nope'");
      expect(cli(['frobnicate'], s.dir).status).toBe(2);
      expect(cli(['run', '--help'], s.dir).stdout).toMatch(/--from VALUE/);
    } finally { s.cleanup(); }
  });

  it('a DAG module that throws on import is a definition error (exit 2) naming the file', () => {
    const dir = join(ROOT, 'test/engine', `.gen-cli-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const s = tempStore();
    try {
      writeFileSync(join(dir, 'broken.ts'), "throw new Error('config missing: set FOO');\nexport default 1;\n");
      const r = cli(['run', join(dir, 'broken.ts')], s.dir);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/DAG module .*broken\.ts failed to import: config missing: set FOO/);
      writeFileSync(join(dir, 'invalid.ts'), `import { dag } from '../../../runtime/engine/dag.ts';\nimport { double } from '../fixtures.ts';\nexport default dag('inv', (d) => { d.node('x', double); d.node('x', double); });\n`);
      const v = cli(['run', join(dir, 'invalid.ts')], s.dir);
      expect(v.status).toBe(2);
      expect(v.stderr).toMatch(/DAG 'inv' is invalid \(3 problems\)[\s\S]*declared twice[\s\S]*not wired/);
    } finally { rmSync(dir, { recursive: true, force: true }); s.cleanup(); }
  });

  it('an invalid param is caught before anything runs (exit 2)', () => {
    const s = tempStore();
    try {
      const r = cli(['run', 'dags/smoke.ts'], s.dir, { SMOKE_N: '-5' });
      expect(r.status).toBe(2); // invalid param: caught before anything runs
      expect(r.stderr).toMatch(/node 'episodes' \(generate-episodes\): param n: Too small/);
    } finally { s.cleanup(); }
  });
});
