/* The merge operator: parameter refinements, wiring checks, the request contract with Python, and a real DAG run. */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dag, validateDag } from '../../runtime/engine/dag.ts';
import { model, operator } from '../../runtime/engine/operator.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { nodePython } from '../fixtures/python.ts';
import { arityProblems, merge, MergeParams } from '../../operators/merge.ts';
import { collectReport } from '../../runtime/report/report.ts';
import { tempStore } from '../engine/fixtures.ts';

const issues = (p: unknown) => {
  const r = MergeParams.safeParse(p);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('merge params', () => {
  it('refuses bad values before anything runs, naming the field', () => {
    expect(issues({ method: 'ties', density: 0 })).toEqual(['density: density must be in (0, 1]']);
    expect(issues({ method: 'ties', density: 1.5 })).toEqual(['density: density must be in (0, 1]']);
    expect(issues({ method: 'dare', dropRate: 1 })).toEqual(['dropRate: dropRate must be in [0, 1)']);
    expect(issues({ method: 'linear', weights: [0.5, 0.6] })[0]).toMatch(/^weights: weights of a linear merge must sum to 1 \(got 0.5, 0.6/);
    expect(issues({ method: 'ties', weights: [1, -1] })[0]).toMatch(/^weights: weights of ties must be > 0/);
    expect(issues({ method: 'linear', overrides: [{ pattern: '*norm*', weights: [2, 0] }] })[0]).toMatch(/^overrides.0.weights: .*sum to 1/);
    expect(issues({ method: 'slerp', t: 2 })).toEqual(['t: t must be in [0, 1]']);
    expect(issues({ method: 'slerp', weights: [1] })).toEqual(['weights: slerp takes t, not weights']);
    expect(issues({ method: 'ties', overrides: [{ pattern: '' }] })[0]).toMatch(/^overrides.0.pattern/);
    expect(issues({ method: 'linear', weights: [0.25, 0.75], overrides: [{ pattern: '*norm*', t: 0 }] })).toEqual([]);
  });

  it('reports wiring problems: arity, missing base, weights per expert', () => {
    const p = (x: object) => MergeParams.parse(x);
    expect(arityProblems(p({ method: 'slerp' }), 2, true)).toEqual(['slerp merges exactly 2 models (base + 1 expert, or 2 experts); got 3']);
    expect(arityProblems(p({ method: 'slerp' }), 2, false)).toEqual([]);
    expect(arityProblems(p({ method: 'linear' }), 1, false)).toEqual(['linear needs at least 2 experts; got 1']);
    expect(arityProblems(p({ method: 'ties' }), 2, false)).toEqual(['ties needs a base model: wire inputs.base']);
    expect(arityProblems(p({ method: 'task_arithmetic', weights: [1, 1, 1] }), 2, true)).toEqual(['weights has 3 values for 2 experts']);
  });

  it('the params are the node request: Python validates them as they are, names and bounds included', async () => {
    const req = { ...MergeParams.parse({ method: 'dare', dropRate: 0.5, overrides: [{ pattern: '*norm*', dropRate: 0, lambda: 2 }] }),
      base: '/b', experts: ['/e'], out: '/o' };
    const dump = (r: object) => nodePython(['-c', 'import json, sys; from agentforge_node.requests.merge import MergeRequest; '
      + 'r = MergeRequest.model_validate_json(sys.argv[1]); print(json.dumps([r.drop_rate, r.overrides[0].lam, r.lam, r.base]))', JSON.stringify(r)]);
    expect(JSON.parse(await dump(req))).toEqual([0.5, 2, 1, '/b']);
    // a value only zod's bounds refuse (generated into the Python model) fails there too, naming the field
    await expect(dump({ ...req, dropRate: 1 })).rejects.toThrow(/dropRate\s+Input should be less than 1/);
  }, 60_000);
});

/** Tiny Llama-shaped models written once by one Python process: a base, two fine-tunes and a broken export. */
let fixtureDir: string;
async function buildFixtures(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'af-merge-fixtures-'));
  await nodePython(['-c', [
    'import sys, os', 'sys.path.insert(0, "bench")', 'from merge_fixtures import llama_tensors, write_model',
    'b = llama_tensors(16, 2, 32, 64, 0)', 'write_model(sys.argv[1] + "/m0", b, max_shard_bytes=6000)',
    'for s in (1, 2): write_model(sys.argv[1] + f"/m{s}", llama_tensors(16, 2, 32, 64, s, base=b), max_shard_bytes=6000)',
  ].join('\n'), dir]);
  cpSync(join(dir, 'm2'), join(dir, 'broken'), { recursive: true });
  const shard = join(dir, 'broken', readdirSync(join(dir, 'broken')).filter((f) => f.endsWith('.safetensors')).sort()[0]);
  truncateSync(shard, statSync(shard).size - 8); // the first shard lost its last bytes
  return dir;
}

/** A test-only operator that publishes one of those fixture models as an artifact. */
const tinyLlama = operator({
  name: 'test-tiny-llama', version: 1, params: z.object({ which: z.string() }), inputs: {}, output: model(),
  async run({ params, out }) { cpSync(join(fixtureDir, params.which), out.dir, { recursive: true }); },
});

const mergeDag = (params: z.input<typeof MergeParams>, truncated = false) => dag('merge-test', (d) => {
  const base = d.node('base', tinyLlama, { which: 'm0' });
  const ex = [1, 2].map((s) => d.node(`e${s}`, tinyLlama, { which: truncated && s === 2 ? 'broken' : `m${s}` }));
  d.node('merged', merge, params, { base, experts: ex });
});

describe('merge operator in a DAG', () => {
  // One store for the block: the fixture models are built once and reused (cached) by the later runs.
  let store: ReturnType<typeof tempStore>;
  beforeAll(async () => { store = tempStore(); fixtureDir = await buildFixtures(); }, 120_000);
  afterAll(() => { store.cleanup(); rmSync(fixtureDir, { recursive: true, force: true }); });

  it('validation names the node and the field before anything runs', () => {
    const problems = validateDag(mergeDag({ method: 'ties', density: 0 }));
    expect(problems.join('\n')).toMatch(/merged.*density/);
  });

  it('merges, writes a complete HF directory and the merge record with input keys', async () => {
    const r = await runDag(mergeDag({ method: 'ties', density: 0.5, overrides: [{ pattern: '*norm*', density: 1 }] }), { storeDir: store.dir });
    expect(r.ok, r.nodes.get('merged')?.error).toBe(true);
    const dir = join(store.dir, 'artifacts', r.nodes.get('merged')!.key);
    const files = readdirSync(dir).filter((f) => !f.startsWith('.')).sort(); // the store's own dotfiles aside
    expect(files).toEqual(['config.json', 'generation_config.json', 'merge.json', 'model.safetensors', 'tokenizer.json',
      'tokenizer_config.json']);
    const record = JSON.parse(readFileSync(join(dir, 'merge.json'), 'utf8'));
    expect(record.method).toBe('ties');
    expect(record.params.density).toBe(0.5);
    expect(record.inputs.base.key).toBe(r.nodes.get('base')!.key);
    expect(record.inputs.experts.map((e: { key: string }) => e.key)).toEqual([r.nodes.get('e1')!.key, r.nodes.get('e2')!.key]);
    expect(record.fingerprints).toHaveLength(3);
    expect(record.secondsStatistics).toBeGreaterThan(0); // TIES's thresholds: a pass before the output
    expect(record.secondsStatistics).toBeLessThan(record.seconds);
    // The shard's own header (8-byte length + JSON) lists every tensor of the Llama layout, in fp32.
    const raw = readFileSync(join(dir, 'model.safetensors'));
    const header = JSON.parse(raw.subarray(8, 8 + Number(raw.readBigUInt64LE(0))).toString('utf8'));
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    expect(names).toHaveLength(21);
    expect(record.tensors).toBe(21);
    expect(header['lm_head.weight']).toMatchObject({ dtype: 'F32', shape: [64, 16] });
  }, 120_000);

  it('records per-tensor TIES diagnostics, which the report charts one mark per tensor', async () => {
    const d = mergeDag({ method: 'ties', density: 0.5, overrides: [{ pattern: '*norm*', density: 1 }] });
    const r = await runDag(d, { storeDir: store.dir });
    expect(r.ok, r.nodes.get('merged')?.error).toBe(true);
    const record = JSON.parse(readFileSync(join(store.dir, 'artifacts', r.nodes.get('merged')!.key, 'merge.json'), 'utf8'));
    const diag = record.diagnostics as { tensor: string; kept_fraction: number; sign_agreement: number }[];
    expect(diag).toHaveLength(21);
    for (const t of diag) {
      // task vectors are random noise (no zeros): density 1 keeps all, 0.5 the top half (k = ⌊n/2⌋, ties aside)
      if (t.tensor.includes('norm')) expect(t.kept_fraction).toBe(1);
      else expect(t.kept_fraction).toBeCloseTo(0.5, 1);
      expect(t.sign_agreement).toBeGreaterThan(0);
      expect(t.sign_agreement).toBeLessThan(1); // two independent noises disagree somewhere
    }
    // Independent symmetric noise: at density d an element has a kept δ with probability 1 − (1 − d)², and both
    // kept with opposite signs with probability d²/2, so the expected agreement is 1 − 0.125/0.75 = 5/6 at 0.5.
    const trimmed = diag.filter((t) => !t.tensor.includes('norm'));
    expect(trimmed.reduce((a, t) => a + t.sign_agreement, 0) / trimmed.length).toBeCloseTo(5 / 6, 1);
    const s = (await collectReport({ storeDir: store.dir, dag: d })).sections.find((x) => x.id === 'merge')!;
    expect(s.missing).toEqual([]);
    expect(s.charts.map((c) => [c.x, c.y, c.rows.length])).toEqual([['tensor', 'kept_fraction', 21], ['tensor', 'sign_agreement', 21]]);
  }, 120_000);

  it('a truncated input shard fails the node with the input named, and commits nothing', async () => {
    const r = await runDag(mergeDag({ method: 'linear', weights: [0.3, 0.7] }, true), { storeDir: store.dir });
    expect(r.nodes.get('merged')!.status).toBe('failed');
    expect(r.nodes.get('merged')!.error).toMatch(/experts\[1\]: .*model-00001-of-\d+\.safetensors: truncated safetensors file: tensor \S+ ends at byte/);
    expect(existsSync(join(store.dir, 'artifacts', r.nodes.get('merged')!.key))).toBe(false);
  }, 120_000);
});
