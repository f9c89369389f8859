import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { StoreError } from '../../storage/store.ts';
import { numbers, tempStore } from './fixtures.ts';

const ROOT = resolve(import.meta.dirname, '../..');
let store: ReturnType<typeof tempStore>;
beforeEach(() => { store = tempStore(); });
afterEach(() => store.cleanup());
const one = () => dag('one', (b) => { b.node('a', numbers, { n: 1 }); });

describe('store housekeeping', () => {
  it('junk in tmp/ with no pid in its name is swept by the next run (it belongs to nobody)', async () => {
    mkdirSync(join(store.dir, 'tmp', 'leftover-stage'), { recursive: true });
    writeFileSync(join(store.dir, 'tmp', 'core.dump'), 'x');
    mkdirSync(join(store.dir, 'tmp', '999999-stage-dead'), { recursive: true });
    expect((await runDag(one(), { storeDir: store.dir })).ok).toBe(true);
    for (const n of ['leftover-stage', 'core.dump', '999999-stage-dead']) expect(existsSync(join(store.dir, 'tmp', n))).toBe(false);
  });

  it.each(['tmp', 'artifacts', 'checkpoints'])('%s being a file is a clear StoreError, not a stack trace', async (name) => {
    writeFileSync(join(store.dir, name), 'not a folder');
    await expect(runDag(one(), { storeDir: store.dir })).rejects.toThrow(StoreError);
    await expect(runDag(one(), { storeDir: store.dir })).rejects.toThrow(new RegExp(`'${name}' is a file, but the store keeps a folder there; move .*${name} away`));
  });

  it('the CLI reports a file where the store should be with exit 1 and one line', () => {
    const f = join(store.dir, 'tmp');
    writeFileSync(f, 'x');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/agentforge.mjs'), 'run', 'dags/smoke.ts', '--store', store.dir], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, SMOKE_N: '10' } });
    expect(r.stderr).toMatch(/^error: store .*'tmp' is a file/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('a syntax error in a DAG outside a "type": "module" package names the file and line', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'af-dag-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const engine = pathToFileURL(join(ROOT, 'runtime/engine/dag.ts')).href;

  it.each([
    ['in the DAG module itself', 'bad.ts', ''],
    ['in a module the DAG imports', 'helper.ts', "import { n } from './helper.ts';\n"],
  ])('%s', (_what, broken, importLine) => {
    writeFileSync(join(dir, 'helper.ts'), broken === 'helper.ts' ? 'export const n = (;\n' : 'export const n = 1;\n');
    writeFileSync(join(dir, 'bad.ts'), `import { dag } from '${engine}';\n${importLine}export default dag('x', (d) => {\n  const a = ;\n});\n`.replace('const a = ;', broken === 'bad.ts' ? 'const a = ;' : 'void 0;'));
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/agentforge.mjs'), 'run', join(dir, 'bad.ts'), '--store', store.dir], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).not.toContain('in a cycle');
    const line = broken === 'bad.ts' ? (importLine ? 4 : 3) : 1;
    expect(r.stderr).toContain(`syntax error at ${join(dir, broken)}:${line}:`);
    expect(r.stderr).toMatch(/Unexpected/);
  }, 60_000);
});

describe('a DAG importing a package its folder cannot resolve names the package and the line', () => {
  it('instead of "Cannot require() ES Module … in a cycle"', () => {
    const dir = mkdtempSync(join(tmpdir(), 'af-dag-'));
    try {
      writeFileSync(join(dir, 'pkg.ts'), `import { dag } from '${join(ROOT, 'runtime/engine/dag.ts')}';\nimport { z } from 'zod';\nexport default dag('x', () => { void z; });\n`);
      const r = spawnSync(process.execPath, [join(ROOT, 'bin/agentforge.mjs'), 'run', join(dir, 'pkg.ts'), '--store', join(dir, 's')], { cwd: ROOT, encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`package 'zod', imported at ${join(dir, 'pkg.ts')}:2, cannot be found from that folder`);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  }, 60_000);
});
