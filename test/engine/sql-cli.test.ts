import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { Ledger } from '../../storage/ledger.ts';
import { double, numbers, tempStore, total } from './fixtures.ts';

// `agentforge sql` / `inspect` as a user meets them: exit codes (README: 1 is a failed node, 2 bad usage), JSON
// numbers, and damage reported naming the artifact while the rest of the store still answers.
const ROOT = resolve(import.meta.dirname, '../..');
const store = tempStore();
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [join(ROOT, 'bin/agentforge.mjs'), ...args], { cwd: ROOT, env: { ...process.env, AGENTFORGE_STORE: store.dir }, encoding: 'utf8' });
let art: Record<string, { key: string; dir: string }> = {};

beforeAll(async () => {
  await runDag(dag('sqlcli', (b) => { b.node('t', total, {}, { xs: b.node('d', double, {}, { xs: b.node('a', numbers, { n: 50 }) }) }); }), { storeDir: store.dir });
  const l = await Ledger.openReadOnly(join(store.dir, 'ledger.duckdb'));
  try {
    const rows = await l.all<{ key: string; node_id: string; path: string }>('SELECT key, node_id, path FROM artifacts');
    art = Object.fromEntries(rows.map((r) => [r.node_id, { key: r.key, dir: join(store.dir, r.path) }]));
  } finally { await l.close(); }
});
afterAll(() => store.cleanup());

describe('agentforge sql / inspect from the command line', { timeout: 120_000 }, () => {
  it('a reader that closes the pipe early (| head) ends the command quietly, exit 0, no stack trace', () => {
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${join(ROOT, 'bin/agentforge.mjs')}" sql "SELECT range AS i, repeat('x', 200) AS pad FROM range(200000)" | head -2`],
      { cwd: ROOT, env: { ...process.env, AGENTFORGE_STORE: store.dir }, encoding: 'utf8' });
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(2);
    expect(r.stderr).not.toMatch(/Unhandled|EPIPE|\n\s+at /);
    expect(r.status, r.stderr).toBe(0);
  });
  it('bad SQL and refused SQL exit 2 with the reason; --json prints counts as numbers', () => {
    const parse = cli('sql', 'SELEC 1');
    expect(parse.status).toBe(2);
    expect(parse.stderr).toMatch(/^error: SQL: Parser Error/m);
    expect(parse.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(cli('sql', 'SELECT * FROM no_such_view').status).toBe(2);
    const outside = cli('sql', "SELECT * FROM read_csv('/etc/passwd')");
    expect(outside.status).toBe(2);
    expect(outside.stderr).toContain("reaches /etc/passwd, outside the store's tables");
    const json = cli('sql', '--json', 'SELECT count(*) AS n, sum(v) AS s FROM d');
    expect(json.status, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([{ n: 50, s: 2450 }]);
  });

  it('a damaged table: sql and inspect on it exit 1 naming the artifact and gc --repair; other views answer', () => {
    const file = join(art.a.dir, 'data.parquet');
    const original = readFileSync(file);
    try {
      const bad = Buffer.from(original);
      bad[Math.floor(bad.length / 2)] ^= 0x01;
      writeFileSync(file, bad);
      const expected = new RegExp(`artifact ${art.a.key} of node 'a' is damaged: .*agentforge gc --repair`);
      const ins = cli('inspect', 'a');
      expect(ins.status).toBe(1);
      expect(ins.stderr).toMatch(expected);
      const q = cli('sql', 'SELECT sum(v) FROM a');
      expect(q.status).toBe(1);
      expect(q.stderr).toMatch(expected);
      expect(cli('inspect', 'd').stdout).toMatch(/d: 50 rows/);
      expect(JSON.parse(cli('sql', '--json', 'SELECT count(*) AS n FROM runs').stdout)).toEqual([{ n: 1 }]);
    } finally { writeFileSync(file, original); }
    expect(cli('inspect', 'a').status).toBe(0);
  });

  it('a damaged report: inspect refuses to print it', () => {
    const file = join(art.t.dir, 'report.json');
    const original = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, original.replace(/\d/, '7'));
      const ins = cli('inspect', 't');
      expect(ins.status).toBe(1);
      expect(ins.stderr).toMatch(new RegExp(`artifact ${art.t.key} of node 't' is damaged`));
    } finally { writeFileSync(file, original); }
    expect(JSON.parse(cli('inspect', 't').stdout)).toEqual({ sum: 2450 });
  });
});
