import { afterAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { openSqlSession, runReadOnly } from '../../storage/sql.ts';
import { benchmarksDag } from '../../dags/benchmarks.ts';
import { chooseAgent, AgentParams } from '../../runtime/eval/agent.ts';
import { replayGold, TauWorld } from '../../runtime/worlds/tau/world.ts';
import { ALLOW_ENV, isolationLevel } from '../../runtime/sandbox/isolation.ts';

/*
 * The benchmarks DAG end to end on a temp store, 2–3 entries per benchmark: the oracle (reference answers) must
 * score 100% everywhere; a real OpenAI-compatible HTTP server that never calls a tool must score exactly what BFCL
 * and τ-bench give a silent agent. Per-entry verdicts are read back with SQL.
 */
const stores: string[] = [];
afterAll(() => { for (const s of stores) rmSync(s, { recursive: true, force: true }); });
const store = () => { const s = mkdtempSync(join(tmpdir(), 'af-bench-')); stores.push(s); return s; };
// Only reference solutions run here, so a machine whose sandbox cannot isolate code opts in rather than failing.
if (isolationLevel() === 'rlimit') process.env[ALLOW_ENV] = '1';

async function sql(dir: string, q: string) {
  const session = await openSqlSession(dir);
  try { return (await runReadOnly(session, q)).rows; } finally { session.close(); }
}

describe('dags/benchmarks.ts', () => {
  it('oracle agent: every benchmark at 100%, one results table', async () => {
    const dir = store();
    const r = await runDag(benchmarksDag({ agent: 'oracle', limit: 3 }), { storeDir: dir });
    expect([...r.nodes].filter(([, n]) => n.status !== 'committed').map(([id, n]) => `${id}: ${n.error}`)).toEqual([]);
    const results = await sql(dir, 'select benchmark, subset, metric, value, n from results order by all');
    expect(results.length).toBeGreaterThanOrEqual(11 + 3 + 2 + 3);
    expect(results.filter((x) => x.value !== 1)).toEqual([]);
    const perCategory = await sql(dir, 'select category, avg(valid::int) as acc, count(*)::int as n from bfcl group by 1 order by 1');
    expect(perCategory).toHaveLength(11);
  }, 300_000);

  it('an endpoint that never calls a tool: AST 0, irrelevance 1, τ reward only where gold changes nothing', async () => {
    let requests = 0;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        requests++;
        const msgs = JSON.parse(body).messages as Array<{ role: string; content: string }>;
        const isUser = msgs[0]?.content.startsWith('You are a user interacting with an agent.');
        const content = isUser ? (msgs.length > 2 ? '###STOP###' : 'Please help me with my order.') : 'I am not sure.';
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ id: 'x', object: 'chat.completion', created: 0, model: 'm', choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content } }] }));
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const dir = store();
    const prev = { ...process.env };
    Object.assign(process.env, { AGENTFORGE_OPENAI_BASE_URL: url, AGENTFORGE_OPENAI_MODEL: 'silent' });
    try {
      const r = await runDag(benchmarksDag({ agent: 'endpoint', limit: 2 }), { storeDir: dir });
      expect([...r.nodes].filter(([, n]) => n.status !== 'committed').map(([id, n]) => `${id}: ${n.error}`)).toEqual([]);
    } finally {
      process.env = prev;
      server.close();
    }
    expect(requests).toBeGreaterThan(20);
    const bfcl = await sql(dir, "select category, valid, error_type from bfcl where category in ('simple', 'irrelevance', 'live_relevance') order by all");
    expect(bfcl.map((x) => [x.category, x.valid, x.error_type])).toEqual([
      ['irrelevance', true, ''], ['irrelevance', true, ''], ['live_relevance', false, 'relevance_error:decoder_failed'], ['live_relevance', false, 'relevance_error:decoder_failed'],
      ['simple', false, 'ast_decoder:decoder_failed'], ['simple', false, 'ast_decoder:decoder_failed']]);
    const code = await sql(dir, 'select bool_or(passed) as any_pass, count(*)::int as n from humaneval');
    expect(code).toEqual([{ any_pass: false, n: 2 }]);
    const tau = await sql(dir, 'select task_index, reward, ended from tau_retail order by 1');
    expect(tau.every((t) => t.ended === 'user_stop')).toBe(true);
    // a silent agent earns reward 1 exactly on tasks whose gold plan changes nothing and asks nothing to be said
    const world = new TauWorld('retail');
    const initial = (world.reset(), world.stateHash());
    const expected = world.data.tasks('test').slice(0, 2).map((t) => (replayGold(world, t).hash === initial && t.outputs.length === 0 ? 1 : 0));
    expect(tau.map((t) => t.reward)).toEqual(expected);
  }, 300_000);

  it('a model artifact without a local-model policy fails with how to serve it', async () => {
    await expect(chooseAgent(AgentParams.parse({ agent: 'model' }), '/models/m', {}, 'eval-bfcl')).rejects.toThrow(/vllm serve \/models\/m/);
    await expect(chooseAgent(AgentParams.parse({ agent: 'endpoint' }), undefined, {}, 'eval-bfcl')).rejects.toThrow(/needs base_url and model/);
  });
});
