import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadDag } from '../../runtime/engine/cli/load.ts';
import { computeKeys } from '../../runtime/engine/keys.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { tempStore } from './fixtures.ts';

/*
 * bin/agentforge.mjs runs the CLI and the DAG module from an esbuild bundle (runtime/engine/cli/bundle.mjs). Cache keys
 * depend on which module declared each operator and on the files it imports: they must be the same as under tsx,
 * and an edit to any bundled file must reach the next run.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const dir = join(ROOT, 'test/engine', `.gen-bundle-${process.pid}`);
const rel = '../../../runtime/engine';
// AGENTFORGE_BUNDLE=1: the bundle must be used (no silent fallback to tsx).
const cli = (args: string[], storeDir: string, env: Record<string, string | undefined> = { AGENTFORGE_BUNDLE: '1' }) =>
  spawnSync(process.execPath, [join(ROOT, 'bin/agentforge.mjs'), ...args], { cwd: ROOT, env: { ...process.env, AGENTFORGE_STORE: storeDir, ...env }, encoding: 'utf8' });
const statusKeys = (dagFile: string, storeDir: string, env?: Record<string, string>) => {
  const r = cli(['status', dagFile, '--json'], storeDir, env);
  expect(r.status, r.stderr).toBe(0);
  return Object.fromEntries((JSON.parse(r.stdout) as { node: string; key: string; state: string }[]).map((x) => [x.node, x.key]));
};
const inProcessKeys = (dag: Awaited<ReturnType<typeof loadDag>>['dag']) => Object.fromEntries([...computeKeys(dag)].map(([id, k]) => [id, k.key]));

beforeAll(() => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'helper.ts'), 'export const FACTOR = 2;\n');
  // An operator declared inside a function of another module: that module is the one callerModule names.
  writeFileSync(join(dir, 'factory.ts'), `import { z } from 'zod';
import { operator, table } from '${rel}/operator.ts';
const Row = z.object({ i: z.number().int() });
export function counter(name: string) {
  return operator({
    name, version: 1, params: z.object({ n: z.number().int() }), inputs: {}, output: table(Row, 'Row'),
    async run({ params, out }) { await out.write(Array.from({ length: params.n }, (_, i) => ({ i }))); },
  });
}
`);
  writeFileSync(join(dir, 'ops.ts'), `import { z } from 'zod';
import { operator, table } from '${rel}/operator.ts';
import { FACTOR } from './helper.ts';
import { counter } from './factory.ts';
const Row = z.object({ i: z.number().int(), v: z.number() });
export const scaled = operator({
  name: 'test-bundle-scaled', version: 1, params: z.object({ n: z.number().int(), dir: z.string() }), inputs: {}, output: table(Row, 'Row'),
  async run({ params, out }) { await out.write(Array.from({ length: params.n }, (_, i) => ({ i, v: i * FACTOR }))); },
});
export const counted = counter('test-bundle-counter');
`);
  writeFileSync(join(dir, 'dag.ts'), `import { dag } from '${rel}/dag.ts';
import { scaled, counted } from './ops.ts';
export default dag('bundle-test', (d) => {
  d.node('scaled', scaled, { n: 5, dir: import.meta.dirname });
  d.node('counted', counted, { n: 3 });
});
`);
  writeFileSync(join(dir, 'broken.ts'), `import { dag } from '${rel}/dag.ts';
function explode(): never {
  throw new Error('broken on purpose');
}
explode();
export default dag('never', () => {});
`);
  // import(expr) cannot be bundled faithfully: the CLI must fall back to tsx.
  writeFileSync(join(dir, 'dynamic.ts'), `import { dag } from '${rel}/dag.ts';
import { counted } from './ops.ts';
export const later = (p: string) => import(p);
export default dag('dynamic', (d) => { d.node('counted', counted, { n: 3 }); });
`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bundled CLI (bin/agentforge.mjs)', () => {
  it('computes the same keys as tsx: a run in-process, then the bundled CLI is a no-op on the same store', async () => {
    const s = tempStore();
    try {
      const dagFile = join(dir, 'dag.ts');
      const { dag } = await loadDag(dagFile);
      expect(dag.nodes.map((n) => n.op.module)).toEqual([join(dir, 'ops.ts'), join(dir, 'factory.ts')]);
      const keys = inProcessKeys(dag);
      const first = await runDag(dag, { storeDir: s.dir });
      expect(first.ok).toBe(true);
      expect([...first.nodes.values()].map((r) => r.status)).toEqual(['committed', 'committed']);

      expect(statusKeys(dagFile, s.dir)).toEqual(keys);
      expect(statusKeys(dagFile, s.dir, { AGENTFORGE_BUNDLE: '0' })).toEqual(keys); // the CLI under tsx
      const again = cli(['run', dagFile, '--plain'], s.dir);
      expect(again.status, again.stderr).toBe(0);
      expect(again.stderr).toMatch(/run noop: 2 cached/);
    } finally { s.cleanup(); }
  });

  it('notices an edit to a local file an operator imports: the node is stale and reruns with the new code', async () => {
    const s = tempStore();
    try {
      const dagFile = join(dir, 'dag.ts');
      const first = cli(['run', dagFile, '--plain'], s.dir);
      expect(first.status, first.stderr).toBe(0);
      const max = () => JSON.parse(cli(['sql', '--json', 'SELECT max(v)::INTEGER AS m FROM scaled'], s.dir).stdout)[0].m;
      expect(max()).toBe(8);

      // Same size, and the old mtime put back: only ctime (and the content) tell the difference.
      const helper = join(dir, 'helper.ts');
      const before = statSync(helper);
      writeFileSync(helper, 'export const FACTOR = 3;\n');
      utimesSync(helper, before.atime, before.mtime);

      const { dag } = await loadDag(dagFile);
      const keys = inProcessKeys(dag); // hashes the files as they are now
      expect(statusKeys(dagFile, s.dir)).toEqual(keys);
      const rerun = cli(['run', dagFile, '--plain'], s.dir);
      expect(rerun.status, rerun.stderr).toBe(0);
      expect(rerun.stderr).toMatch(/\[scaled\] committed/);
      expect(rerun.stderr).toMatch(/1 committed, 1 cached|1 cached, 1 committed/);
      expect(max()).toBe(12); // the bundle was rebuilt: the new FACTOR ran
    } finally {
      writeFileSync(join(dir, 'helper.ts'), 'export const FACTOR = 2;\n');
      s.cleanup();
    }
  });

  it('falls back to tsx when a module cannot be bundled faithfully (and says why when the bundle is required)', () => {
    const s = tempStore();
    try {
      const dagFile = join(dir, 'dynamic.ts');
      const strict = cli(['run', dagFile, '--plain'], s.dir);
      expect(strict.status).toBe(1);
      expect(strict.stderr).toMatch(/AGENTFORGE_BUNDLE=1 but build failed: .*dynamic\.ts:3: .*not a string literal/);
      const r = cli(['run', dagFile, '--plain'], s.dir, { AGENTFORGE_BUNDLE: undefined });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/\[counted\] committed/);
      expect(r.stderr).not.toMatch(/bundle/);
      // The failed build is remembered only until a file it read changes.
      writeFileSync(dagFile, readFileSync(dagFile, 'utf8').replace(/^export const later.*\n/m, ''));
      const fixed = cli(['run', dagFile, '--plain'], s.dir);
      expect(fixed.status, fixed.stderr).toBe(0);
      expect(fixed.stderr).toMatch(/run noop: 1 cached/);
    } finally { s.cleanup(); }
  });

  it('a DAG module that throws names its own file and line in the stack, not the bundle', () => {
    const s = tempStore();
    try {
      const r = cli(['run', join(dir, 'broken.ts')], s.dir);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/failed to import: broken on purpose/);
      expect(r.stderr).toContain(`${join(dir, 'broken.ts')}:3:`);
      expect(r.stderr).not.toMatch(/node_modules[\\/]\.cache/);
    } finally { s.cleanup(); }
  });
});
