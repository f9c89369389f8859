/*
 * push-to-hub against the hub look-alike: a model resolved from the hub, pushed with a generated card (eval tables,
 * lineage, base model) and the trajectories as a Parquet dataset; the large file goes through the LFS batch API as
 * the library does it; the pushed Parquet reads back in pyarrow with every row; no token / a refused token fail
 * with the fix named.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { pushToHub } from '../../operators/push-to-hub.ts';
import { resolveModel } from '../../operators/resolve-model.ts';
import { dag } from '../../runtime/engine/dag.ts';
import { operator, table } from '../../runtime/engine/operator.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { ResultRow } from '../../runtime/eval/results.ts';
import { EvalRow } from '../../schemas/eval.ts';
import { Trajectory } from '../../schemas/trajectory.ts';
import { randomConversation } from '../fixtures/conversations.ts';
import { pythonBin, runProcess } from '../fixtures/python.ts';
import { tinyModelFiles } from './fixtures.ts';
import { RemoteHub } from './hub-remote.ts';

let hub: RemoteHub;
let root: string;
let saved: NodeJS.ProcessEnv;
const files = tinyModelFiles({ weights: 100_000 });

beforeAll(async () => {
  hub = await RemoteHub.start();
  await hub.addRepo('org/tiny', files);
});
afterAll(() => hub.close());
beforeEach(() => {
  saved = { ...process.env };
  root = mkdtempSync(join(tmpdir(), 'af-push-'));
  process.env.HF_HOME = join(root, 'hf');
  process.env.HF_ENDPOINT = hub.url;
  process.env.HF_TOKEN = 'hf_test_token';
});
afterEach(() => {
  process.env = saved;
  rmSync(root, { recursive: true, force: true });
});

const trajectories = Array.from({ length: 37 }, (_, i) => {
  const c = randomConversation(40 + i);
  return Trajectory.parse({ id: `t${i}`, task_id: `task${i % 5}`, world: 'shop', messages: c.messages, tools: c.tools, source: 'synth', teacher: 'scripted', seed: i, turns: c.messages.length, finish_reason: 'answered', split: 'train' });
});
const trajs = operator({ name: 'test-push-trajs', version: 1, params: z.object({}), inputs: {}, output: table(Trajectory), async run({ out }) { await out.write(trajectories); } });
const results = operator({
  name: 'test-push-results', version: 1, params: z.object({}), inputs: {}, output: table(ResultRow),
  async run({ out }) { await out.write([{ agent: 'rl', benchmark: 'tau-bench', subset: 'retail-test', metric: 'pass^1', value: 0.25, n: 20, errored: 3, attempts: 40 }]); },
});
const heldout = operator({
  name: 'test-push-heldout', version: 1, params: z.object({}), inputs: {}, output: table(EvalRow),
  async run({ out }) {
    await out.write([{ model: 'sft', world: 'shop', split: 'heldout', tasks: 10, samples_per_task: 2, temperature: 0, success: 0.35, pass_hat_k: { 1: 0.35, 2: 0.2 }, mean_reward: 0.4, mean_turns: 3, mean_completion_tokens: 50, finish_reasons: {}, errors: {} }]);
  },
});

function pipeline(o: { dataset?: boolean } = {}) {
  return dag('push', (b) => {
    const m = b.node('base', resolveModel, { base: { kind: 'hub', repo: 'org/tiny' } });
    const t = b.node('trajs', trajs, {});
    b.node('push', pushToHub, { repo: 'me/agent', dataset_repo: o.dataset === false ? null : 'me/agent-trajectories' }, {
      model: m, results: b.node('results', results, {}), heldout: b.node('heldout', heldout, {}), trajectories: o.dataset === false ? undefined : t,
    });
  });
}

describe('push-to-hub', () => {
  it('pushes the model files and a card with the eval tables, the lineage and the base model; trajectories as Parquet', async () => {
    const r = await runDag(pipeline(), { storeDir: join(root, 'store') });
    expect(r.nodes.get('push')!.error).toBeUndefined();
    const pushed = (await hub.files('me/agent'))!;
    for (const [p, b] of Object.entries(files)) if (p !== 'README.md') expect(pushed[p]?.equals(b), p).toBe(true);
    const card = pushed['README.md'].toString();
    expect(card).toMatch(/^---\nlibrary_name: transformers\n[\s\S]*base_model: org\/tiny\ndatasets:\n- me\/agent-trajectories\n---\n/);
    expect(card).toContain('| sft | shop | heldout | 10 | 2 | 0.3500 | 0.3500 |');
    expect(card).toContain('| rl | tau-bench | retail-test | pass^1 | 0.2500 | 20 | 3/40 |');
    expect(card).toContain(`| base | resolve-model v2 | ${r.nodes.get('base')!.key} |`);
    expect(card).toMatch(/at commit `[0-9a-f]{40}`/);
    const log = await hub.log();
    expect(log.some((l) => l.method === 'POST' && l.url === '/me/agent.git/info/lfs/objects/batch')).toBe(true);
    expect(log.filter((l) => l.method === 'PUT' && l.url.startsWith('/lfs-upload/')).length).toBeGreaterThanOrEqual(2); // weights + tokenizer.json

    const data = (await hub.files('me/agent-trajectories', 'main', 'dataset'))!;
    const parquet = Object.keys(data).filter((k) => k.endsWith('.parquet'));
    expect(parquet).toEqual(['data/train-00000-of-00001.parquet']);
    const local = join(root, 'pushed.parquet');
    writeFileSync(local, data[parquet[0]]);
    const py = await runProcess(await pythonBin(), ['-c', `import pyarrow.parquet as pq, sys; t = pq.read_table(sys.argv[1]); print(t.num_rows, sorted(t.column_names)[:3])`, local]);
    expect(py.stderr).toBe('');
    expect(py.stdout.trim().split(' ')[0]).toBe('37');
  }, 120_000);

  it('no token: fails naming HF_TOKEN before anything is pushed; a read-only token is named', async () => {
    const before = await hub.ref('me/agent');
    delete process.env.HF_TOKEN;
    const r = await runDag(pipeline({ dataset: false }), { storeDir: join(root, 'store') });
    expect(r.nodes.get('push')!.error).toMatch(/push-to-hub: pushing to me\/agent needs a write token; set HF_TOKEN/);
    process.env.HF_TOKEN = 'hf_read_only';
    const bad = await runDag(pipeline({ dataset: false }), { storeDir: join(root, 'store2') });
    expect(bad.nodes.get('push')!.error).toMatch(/the hub refused to let this token write to me\/agent \(HTTP 403\); set HF_TOKEN to a token with write access to me/);
    expect(await hub.ref('me/agent')).toBe(before); // nothing was committed
  }, 120_000);
});
