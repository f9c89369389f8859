/*
 * Reliability: bad DAG definitions (issue 19). Each case is a DAG module written to a temporary folder outside
 * the package (so Node loads it the way a user's own DAG file is loaded) and run through the real CLI
 * (`bin/agentforge.mjs run FILE`). A case is held when the CLI exits 2 (a definition or usage error), commits
 * nothing, prints no stack trace, and its message names what to fix: the node (and key, where one is involved)
 * or the file and line. About 20-30 s. `run()` is called by the reliability suite.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface Metric { metric: string; held: number; total: number; detail?: string }

const ROOT = resolve(import.meta.dirname, '../..');
// Plain absolute paths, as a user's DAG outside the repo would import them.
const url = (p: string) => join(ROOT, p);
const HEAD = `import { dag } from '${url('runtime/engine/dag.ts')}';\nimport { numbers, double, total, makeModel } from '${url('test/engine/fixtures.ts')}';\n`;

interface Case {
  name: string;
  /** The DAG module's source (HEAD is prepended unless raw); `extra` files go beside it. */
  source: string;
  raw?: boolean;
  extra?: Record<string, string>;
  /** What the message must say; FILE stands for the DAG file's path. */
  want: (file: string, dir: string) => RegExp[];
  /** A module that throws at import: its stack is the useful part. */
  stackOk?: boolean;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const CASES: Case[] = [
  { name: 'duplicate node ids', source: `export default dag('c', (d) => { d.node('a', numbers, { n: 1 }); d.node('a', numbers, { n: 2 }); });`,
    want: () => [/node 'a' is declared twice/] },
  { name: 'a cycle', source: `export default dag('c', (d) => { const x = d.node('x', double, {}, { xs: d.ref('y') }); d.node('y', double, {}, { xs: x }); });`,
    want: () => [/cycle: (x → y → x|y → x → y)/] },
  { name: 'a misspelt param', source: `export default dag('c', (d) => { d.node('gen', numbers, { nn: 3 }); });`,
    want: () => [/node 'gen' \(test-numbers\): unknown param 'nn' — did you mean 'n'\?/] },
  { name: 'a misspelt optional param beside valid ones', source: `export default dag('c', (d) => { d.node('gen', numbers, { n: 3, scael: 2 }); });`,
    want: () => [/node 'gen' .*unknown param 'scael' — did you mean 'scale'\?/] },
  { name: 'a param of the wrong type', source: `export default dag('c', (d) => { d.node('gen', numbers, { n: 'three' }); });`,
    want: () => [/node 'gen' \(test-numbers\): param n: .*expected number/] },
  { name: 'a missing required param', source: `export default dag('c', (d) => { d.node('gen', numbers, {}); });`,
    want: () => [/node 'gen' \(test-numbers\): param n:/] },
  { name: 'a reserved id (runs)', source: `export default dag('c', (d) => { d.node('runs', numbers, { n: 1 }); });`,
    want: () => [/node 'runs': 'runs' is the name of a ledger view/] },
  { name: 'a reserved id (metrics)', source: `export default dag('c', (d) => { d.node('metrics', numbers, { n: 1 }); });`,
    want: () => [/node 'metrics': 'metrics' is the name of a ledger view/] },
  { name: "an id beside its '_all' view", source: `export default dag('c', (d) => { d.node('x', numbers, { n: 1 }); d.node('x_all', numbers, { n: 2 }); });`,
    want: () => [/node 'x_all': ids ending in '_all' are reserved/] },
  { name: "an id of the '<dag>__<node>' form", source: `export default dag('c', (d) => { d.node('smoke__kept', numbers, { n: 1 }); });`,
    want: () => [/node 'smoke__kept': ids may not contain '__'/] },
  { name: 'an id that is not lower_snake_case', source: `export default dag('c', (d) => { d.node('VerifySFT', numbers, { n: 1 }); });`,
    want: () => [/node 'VerifySFT': ids are lower_snake_case/] },
  { name: 'a lone surrogate in a param', source: `export default dag('c', (d) => { d.node('gen', numbers, { n: 1, scale: 1, note: '\\ud800' } as never); });`,
    want: () => [/node 'gen' .*(lone UTF-16 surrogate|unknown param 'note')/] },
  { name: 'a lone surrogate in a string param', source: `import { z } from '${url('node_modules/zod/index.js')}';\nimport { operator, table } from '${url('runtime/engine/operator.ts')}';\nconst echo = operator({ name: 'bench-echo', version: 1, params: z.object({ text: z.string() }), inputs: {}, output: table(z.object({ s: z.string() })), async run({ params, out }) { await out.write([{ s: params.text }]); } });\nexport default dag('c', (d) => { d.node('echo', echo, { text: 'half \\udc00 pair' }); });`,
    want: () => [/node 'echo' \(bench-echo\): param text holds a lone UTF-16 surrogate at index 5/] },
  { name: 'an unwired input', source: `export default dag('c', (d) => { d.node('dbl', double, {}); });`,
    want: () => [/node 'dbl': input 'xs' \(table\(Num\)\) is not wired/] },
  { name: 'an input naming no node', source: `export default dag('c', (d) => { d.node('dbl', double, {}, { xs: d.ref('nope') }); });`,
    want: () => [/node 'dbl': input 'xs' refers to 'nope', which is not a node of this DAG/] },
  { name: 'an unknown input name', source: `export default dag('c', (d) => { const a = d.node('a', numbers, { n: 1 }); d.node('dbl', double, {}, { xs: a, ys: a } as never); });`,
    want: () => [/node 'dbl': unknown input 'ys'; test-double takes: xs/] },
  { name: 'an input of the wrong kind', source: `export default dag('c', (d) => { const m = d.node('m', makeModel); d.node('sum', total, {}, { xs: m } as never); });`,
    want: () => [/node 'sum' input 'xs' expects table\(Num\) but node 'm' \(test-model\) produces model\(\)/] },
  { name: 'not an operator', source: `export default dag('c', (d) => { d.node('x', { name: 'fake' } as never); });`,
    want: () => [/node 'x': the second argument is not an operator/] },
  { name: 'a syntax error in the DAG', source: `export default dag('c', (d) => {\n  const a = ;\n});`,
    want: (f) => [new RegExp(`syntax error at ${esc(f)}:4:\\d+: Unexpected`)] },
  { name: 'a syntax error in a module the DAG imports', source: `import { n } from './helper.ts';\nexport default dag('c', (d) => { d.node('gen', numbers, { n }); });`,
    extra: { 'helper.ts': 'export const n = (3;\n' },
    want: (_f, dir) => [new RegExp(`syntax error at ${esc(join(dir, 'helper.ts'))}:1:\\d+`)] },
  { name: 'a package that cannot be found from the DAG\'s folder', source: `import { z } from 'zod';\nexport default dag('c', (d) => { void z; d.node('gen', numbers, { n: 1 }); });`,
    want: (f) => [new RegExp(`package 'zod', imported at ${esc(f)}:3, cannot be found`)] },
  { name: 'no default export', source: `export const d = dag('c', () => {});`, want: (f) => [new RegExp(`DAG module ${esc(f)} must \`export default dag`)] },
  { name: 'a DAG file that does not exist', source: '', want: (f) => [new RegExp(`no DAG module at '${esc(f)}x'`)] },
  { name: 'a DAG that throws while building', source: `export default dag('c', () => {\n  throw new Error('my mistake');\n});`,
    want: (f) => [/my mistake/, new RegExp(`${esc(f)}:4`)], stackOk: true },
];

function cli(args: string[], store: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/agentforge.mjs'), 'run', ...args, '--plain', '--store', store], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += String(d); });
    child.on('exit', (code) => done({ code, stderr }));
  });
}

export async function run(): Promise<Metric[]> {
  const failures: string[] = [];
  let held = 0;
  for (const c of CASES) {
    const dir = mkdtempSync(join(tmpdir(), 'af-rel-def-'));
    const store = join(dir, 'store');
    try {
      const file = join(dir, 'bad.ts');
      for (const [name, text] of Object.entries(c.extra ?? {})) writeFileSync(join(dir, name), text);
      if (c.source) writeFileSync(file, c.raw ? c.source : HEAD + c.source + '\n');
      const { code, stderr } = await cli([c.source ? file : `${file}x`], store);
      const missing = c.want(file, dir).filter((re) => !re.test(stderr));
      const stack = !c.stackOk && /\n\s+at .+:\d+:\d+\)?\n/.test(stderr);
      const committed = existsSync(join(store, 'artifacts')) && readdirSync(join(store, 'artifacts')).length > 0;
      if (code === 2 && !missing.length && !stack && !committed) held++;
      else failures.push(`${c.name}: exit ${code}${missing.length ? `, message lacks ${missing.join(' ')}` : ''}${stack ? ', stack trace printed' : ''}${committed ? ', committed an artifact' : ''} — ${stderr.trim().split('\n').slice(0, 3).join(' | ').slice(0, 300)}`);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  }
  return [{ metric: 'bad_definitions_clear_error', held, total: CASES.length, detail: failures.length ? failures.join('; ') : `cases: ${CASES.map((c) => c.name).join(', ')}` }];
}

if (process.argv[1] && /reliability[\\/]definitions\.ts$/.test(process.argv[1])) {
  for (const m of await run()) console.log(JSON.stringify(m));
}
