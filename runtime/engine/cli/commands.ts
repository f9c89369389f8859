import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDag } from './load.ts';
import { printTable, toCsv } from './format.ts';
import { runDag, UsageError } from '../scheduler.ts';
import { LiveReporter, PlainReporter } from '../progress.ts';
import { assertLedgerAt, resolveStoreDir, StoreError } from '../../../storage/store.ts';
// Commands that need DuckDB load it on demand: a no-op `run` must start fast.
const sqlModule = () => import('../../../storage/sql.ts');
import { sqlIdent } from '../../../storage/codec.ts';
import { reportCommand } from '../../report/command.ts';

type Opt = { type: 'string' | 'boolean'; multiple?: boolean; help: string };
export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: Record<string, Opt>;
  run(positionals: string[], values: Record<string, unknown>): Promise<number>;
}

const store = (v: Record<string, unknown>) => resolveStoreDir(v.store as string | undefined);
const list = (v: unknown) => (v as string[] | undefined) ?? [];
function need(pos: string[], n: number, what: string) { if (pos.length < n) throw new UsageError(`missing ${what}`); }

const run: Command = {
  name: 'run', summary: 'run a DAG (only what changed since the last run)', usage: 'run DAG [--force NODE] [--from NODE] [--only NODE]',
  options: {
    force: { type: 'string', multiple: true, help: 'rerun NODE even if its key is committed' },
    from: { type: 'string', multiple: true, help: 'rerun NODE and everything downstream of it' },
    only: { type: 'string', multiple: true, help: 'run only NODE (its inputs must be committed)' },
    concurrency: { type: 'string', help: 'nodes run at once (default 4; gpu-tagged nodes: 1)' },
    wait: { type: 'string', help: 'seconds to wait for another run holding the store (default: refuse at once)' },
    plain: { type: 'boolean', help: 'plain progress lines even on a TTY' },
  },
  async run(pos, v) {
    need(pos, 1, 'DAG module (e.g. dags/smoke.ts)');
    const { dag, file } = await loadDag(pos[0]);
    const controller = new AbortController();
    let interrupts = 0;
    const onSig = () => {
      if (++interrupts > 1) process.exit(130);
      process.stderr.write('\ninterrupted: cancelling running nodes (nothing partial is committed; Ctrl-C again to quit now)\n');
      controller.abort();
    };
    process.on('SIGINT', onSig);
    process.on('SIGTERM', onSig);
    const tty = process.stderr.isTTY && !v.plain;
    const reporter = tty ? new LiveReporter(dag.nodes.map((n) => n.id)) : new PlainReporter();
    try {
      const result = await runDag(dag, {
        storeDir: store(v), dagFile: file, force: list(v.force), from: list(v.from), only: list(v.only),
        concurrency: v.concurrency ? Number(v.concurrency) : undefined, signal: controller.signal, reporter,
        waitLockMs: v.wait ? Number(v.wait) * 1000 : 0,
      });
      const failed = [...result.nodes].filter(([, r]) => r.status === 'failed');
      for (const [id, r] of failed) console.error(`node ${id} failed: ${r.error}`);
      const counts = [...result.nodes.values()].reduce<Record<string, number>>((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {});
      console.error(`run ${result.runId}: ${Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(', ')}`);
      return result.cancelled ? 130 : result.ok ? 0 : 1;
    } finally {
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
    }
  },
};

const status: Command = {
  name: 'status', summary: 'which nodes of a DAG are fresh or stale, and why', usage: 'status DAG [--json]',
  options: { json: { type: 'boolean', help: 'print JSON' } },
  async run(pos, v) {
    need(pos, 1, 'DAG module');
    const { dag } = await loadDag(pos[0]);
    const { dagStatus } = await import('../status.ts');
    const rows = await dagStatus(dag, store(v));
    if (v.json) { console.log(JSON.stringify(rows, null, 2)); return 0; }
    for (const r of rows) {
      console.log(`${r.state.padEnd(6)} ${r.node} (${r.op}) ${r.key.slice(0, 12)}`);
      for (const w of r.why) console.log(`         ${w}`);
    }
    return 0;
  },
};

const sql: Command = {
  name: 'sql', summary: 'read-only SQL over the ledger and every table artifact', usage: 'sql "SELECT …" [--json|--csv]',
  options: { json: { type: 'boolean', help: 'rows as JSON' }, csv: { type: 'boolean', help: 'rows as CSV' }, views: { type: 'boolean', help: 'list the views' } },
  async run(pos, v) {
    const { openSqlSession, runReadOnly, SqlError } = await sqlModule();
    const session = await openSqlSession(store(v));
    try {
      if (v.views) { console.log(session.views.join('\n')); return 0; }
      need(pos, 1, 'a SQL query');
      const res = await runReadOnly(session, pos.join(' ')).catch((e) => {
        // Exit 1 is a failed node; a statement DuckDB rejects is bad usage (2).
        throw e instanceof SqlError ? new UsageError(`SQL: ${e.message}`) : e;
      });
      if (v.json) console.log(JSON.stringify(res.rows, null, 2));
      else if (v.csv) process.stdout.write(toCsv(res.columns, res.rows));
      else printTable(res.columns, res.rows);
      return 0;
    } finally { session.close(); }
  },
};

const inspect: Command = {
  name: 'inspect', summary: "a node's latest table: schema, row count, sample rows", usage: 'inspect NODE [--rows N]',
  options: { rows: { type: 'string', help: 'sample rows to show (default 5)' } },
  async run(pos, v) {
    need(pos, 1, 'a node id');
    const { openSqlSession, runReadOnly } = await sqlModule();
    const session = await openSqlSession(store(v));
    try {
      if (!session.views.includes(pos[0])) {
        const nonTable = existsSync(join(store(v), 'ledger.duckdb'))
          ? await runReadOnly(session, `SELECT key, node_id, kind, path, files FROM artifacts WHERE node_id = '${pos[0].replace(/'/g, "''")}' ORDER BY committed_at DESC LIMIT 1`)
          : { rows: [] as Record<string, unknown>[] };
        const row = nonTable.rows[0] as { key: string; node_id: string; kind: string; path: string; files: unknown } | undefined;
        if (row?.kind === 'report') {
          const { damageMessage, fileEntries, fullCheck } = await import('../../../storage/integrity.ts');
          const damaged = fullCheck(join(store(v), row.path), fileEntries(row.files));
          if (damaged) throw new StoreError(damageMessage(row, damaged));
          console.log(readFileSync(join(store(v), row.path, 'report.json'), 'utf8'));
          return 0;
        }
        if (row) { console.log(`${pos[0]}: ${row.kind} artifact at ${join(store(v), row.path)}`); return 0; }
        throw new UsageError(`no committed artifact for node '${pos[0]}'; tables: ${session.views.filter((x) => !x.endsWith('_all')).join(', ')}`);
      }
      const t = sqlIdent(pos[0]);
      const schema = await runReadOnly(session, `SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM ${t})`);
      const count = await runReadOnly(session, `SELECT count(*) AS rows FROM ${t}`);
      console.log(`${pos[0]}: ${count.rows[0].rows} rows`);
      printTable(schema.columns, schema.rows);
      const sample = await runReadOnly(session, `SELECT * FROM ${t} LIMIT ${Number(v.rows ?? 5)}`);
      printTable(sample.columns, sample.rows);
      return 0;
    } finally { session.close(); }
  },
};

const runs: Command = {
  name: 'runs', summary: 'recent runs with their node counts', usage: 'runs [--limit N]',
  options: { limit: { type: 'string', help: 'how many (default 20)' } },
  async run(_pos, v) {
    const { Ledger } = await import('../../../storage/ledger.ts');
    if (existsSync(store(v))) assertLedgerAt(store(v)); // a lost ledger is not a store that never ran
    const ledger = await Ledger.openReadOnly(join(store(v), 'ledger.duckdb'));
    try {
      const rows = await ledger.all(`SELECT r.run_id, r.dag, r.status, r.started_at, round(epoch(r.finished_at - r.started_at), 2) AS seconds,
        count(e.node_id) FILTER (WHERE e.status = 'committed') AS committed, count(e.node_id) FILTER (WHERE e.status = 'failed') AS failed
        FROM runs r LEFT JOIN executions e USING (run_id) GROUP BY ALL ORDER BY r.started_at DESC LIMIT ${Number(v.limit ?? 20)}`);
      printTable(['run_id', 'dag', 'status', 'started_at', 'seconds', 'committed', 'failed'], rows);
      return 0;
    } finally { await ledger.close(); }
  },
};

const gcCmd: Command = {
  name: 'gc', summary: 'remove provably unreferenced artifacts and dead scratch; --repair rebuilds a lost ledger, drops damaged artifacts', usage: 'gc [--repair] [--dry-run]',
  options: { repair: { type: 'boolean', help: 'rebuild a lost ledger from the artifacts\' manifests; verify every checksum; drop damaged artifacts so they are recomputed' }, 'dry-run': { type: 'boolean', help: 'only say what would go' } },
  async run(_pos, v) {
    const { gc } = await import('../gc.ts');
    const r = await gc(store(v), { repair: !!v.repair, dryRun: !!v['dry-run'] });
    for (const line of r.log) console.log(line);
    console.log(`gc: ${r.removed} removed, ${r.repaired} repaired, ${r.kept} kept (not provably unreferenced)${v['dry-run'] ? ' (dry run)' : ''}`);
    return 0;
  },
};

/**
 * `serve` lives with the inference engines (runtime/agent/serve/main.ts, a layer above the engine): the CLI runs it as
 * its own process, so the engine layer never imports the agent layer (and the CLI bundle stays free of onnxruntime).
 * The server exits when this process does (it watches its stdin); SIGINT/SIGTERM are passed on.
 */
const SERVE_OPTIONS = ['port', 'host', 'model', 'max-batch', 'max-context', 'threads', 'device', 'chat-template'];
const serveCmd: Command = {
  name: 'serve', summary: 'serve an ONNX export over an OpenAI-compatible HTTP API (chat, completions, weight reload)',
  usage: 'serve MODEL_DIR [--port N] [--host H] [--model NAME] [--max-batch N] [--max-context N] [--threads N] [--device cpu|cuda]',
  options: Object.fromEntries(SERVE_OPTIONS.map((k) => [k, { type: 'string', help: 'see runtime/agent/serve/main.ts' }])) as Record<string, Opt>,
  async run(pos, v) {
    const { spawn } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const entry = fileURLToPath(new URL('../../agent/serve/main.ts', import.meta.url));
    const args = [...pos, ...SERVE_OPTIONS.flatMap((k) => (v[k] === undefined ? [] : [`--${k}`, String(v[k])]))];
    const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { stdio: ['pipe', 'inherit', 'inherit'],
      env: { ...process.env, AGENTFORGE_SERVE_PARENT_PIPE: '1' } });
    const pass = (sig: NodeJS.Signals) => () => child.kill(sig);
    const onInt = pass('SIGINT');
    const onTerm = pass('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    try {
      return await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (code, sig) => resolve(code ?? (sig ? 128 + 15 : 1)));
      });
    } finally {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    }
  },
};

export const COMMANDS: Record<string, Command> = { run, status, sql, inspect, runs, gc: gcCmd, report: reportCommand, serve: serveCmd };
