/*
 * One declaration per runtime-node command: the Python request models are generated from the zod schemas in
 * runtime/node/protocol.ts. The committed file must be what the generator writes now, and the generated models
 * must mean what the zod schemas mean: same defaults, same names (aliases), same refusals.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate, OUT } from '../../scripts/gen-node-protocol.ts';
import { GPU_DIR } from '../../runtime/node/env.ts';
import { NODE_REQUESTS } from '../../runtime/node/protocol.ts';
import { python } from './helpers.ts';

/** The smallest valid request of each command (its required fields). */
const MINIMAL: Record<keyof typeof NODE_REQUESTS, object> = {
  'init-model': { out_dir: '/o', chat_template: 't' },
  'train-sft': { model_dir: '/m', shards: ['/s'], out_dir: '/o' },
  'export-onnx': { model_dir: '/m', out_dir: '/o' },
  'convert-gguf': { gguf_file: '/g.gguf', out_dir: '/o' },
  forward: { model_dir: '/m', input_ids: [[1, 2]] },
  tokenize: { tokenizer: '/t' },
  merge: { method: 'ties', experts: ['/e'], out: '/o' },
  'train-rl': { model_dir: '/m', samples: [{ input_ids: [1, 2], loss_mask: [0, 1], behaviour_logprobs: [0, -1], advantage: 0.5 }] },
};

/** Runs each request through the generated Python model; returns its dump (JSON names) or its validation error. */
function pythonParse(requests: Array<[string, unknown]>, py: string): Array<{ ok: unknown } | { error: string }> {
  const code = `import json, sys
from pydantic import ValidationError
import importlib
out = []
for cmd, req in json.loads(sys.stdin.read()):
    model = importlib.import_module("agentforge_node.requests." + cmd.replace("-", "_")).Request
    try:
        out.append({"ok": model.model_validate(req).model_dump(by_alias=True, exclude_none=True)})
    except ValidationError as e:
        out.append({"error": str(e)})
print(json.dumps(out))`;
  return JSON.parse(execFileSync(py, ['-c', code], { cwd: GPU_DIR, env: { ...process.env, PYTHONPATH: GPU_DIR },
    input: JSON.stringify(requests), encoding: 'utf8' }));
}

const dropNulls = (v: unknown): unknown => Array.isArray(v) ? v.map(dropNulls)
  : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null && x !== undefined).map(([k, x]) => [k, dropNulls(x)]))
    : v;

describe('runtime node protocol', () => {
  it('agentforge_node/requests/ is what scripts/gen-node-protocol.ts generates from the zod schemas', () => {
    const want = generate();
    const have = new Map(readdirSync(OUT).filter((f) => f.endsWith('.py')).map((f) => [f, readFileSync(join(OUT, f), 'utf8')]));
    expect(have, 'stale: run npx tsx scripts/gen-node-protocol.ts').toEqual(want);
    expect([...want.keys()]).toContain('train_rl.py');
  });

  it('Python fills in exactly the zod defaults, under the same names', async () => {
    const cmds = Object.keys(MINIMAL) as Array<keyof typeof NODE_REQUESTS>;
    const got = pythonParse(cmds.map((c) => [c, MINIMAL[c]]), await python());
    cmds.forEach((c, i) => expect({ [c]: got[i] }).toEqual({ [c]: { ok: dropNulls(NODE_REQUESTS[c].parse(MINIMAL[c])) } }));
  }, 60_000);

  it('what zod refuses, Python refuses, naming the field', async () => {
    const bad: Array<[keyof typeof NODE_REQUESTS, object, RegExp]> = [
      ['train-rl', { ...MINIMAL['train-rl'], lr: 0 }, /lr\s+Input should be greater than 0/],
      ['train-rl', { ...MINIMAL['train-rl'], device: 'tpu' }, /device\s+Input should be 'auto', 'cpu' or 'cuda'/],
      ['train-sft', { ...MINIMAL['train-sft'], betas: [0.9] }, /betas\s+List should have at least 2 items/],
      ['merge', { ...MINIMAL.merge, dropRate: 1 }, /dropRate\s+Input should be less than 1/],
      ['forward', { ...MINIMAL.forward, input_ids: [[1.5]] }, /input_ids\.0\.0\s+Input should be a valid integer/],
    ];
    const got = pythonParse(bad.map(([c, r]) => [c, r]), await python());
    bad.forEach(([c, r, msg], i) => {
      expect(NODE_REQUESTS[c].safeParse(r).success, `zod accepts ${JSON.stringify(r)}`).toBe(false);
      expect((got[i] as { error?: string }).error ?? 'accepted').toMatch(msg);
    });
  }, 60_000);

  it('a misspelt field, which zod strips on the operator side, is refused by the node', async () => {
    const [got] = pythonParse([['init-model', { ...MINIMAL['init-model'], vocab_sise: 10 }]], await python());
    expect((got as { error?: string }).error).toMatch(/vocab_sise\s+Extra inputs are not permitted/);
  }, 60_000);
});
