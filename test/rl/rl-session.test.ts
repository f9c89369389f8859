/*
 * The RL session client against the real Python child: load, train steps, export that onnxruntime-node runs
 * (full export, then a weights-only refresh) matching torch, replay skipping, crash and abort handling.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runNode } from '../../runtime/node/client.ts';
import { ForwardResult, type RlSample } from '../../runtime/node/protocol.ts';
import { withAdvantages, type ScoredSample } from '../../runtime/rl/advantages.ts';
import { RlSession } from '../../runtime/node/rl-session.ts';
import { ortLogits, python, tinyModel } from '../node/helpers.ts';

/** Two groups of three completions after a 4-token prompt; behaviour logprobs deliberately off (TIS kicks in). */
function samples(): RlSample[] {
  const out: ScoredSample[] = [];
  for (let g = 0; g < 2; g++) {
    for (let i = 0; i < 3; i++) {
      const ids = [10 + g, 20, 30, 40, ...Array.from({ length: 5 + i }, (_, j) => 50 + ((g * 37 + i * 11 + j * 7) % 200))];
      const mask = ids.map((_, j) => (j >= 4 ? 1 : 0));
      out.push({ input_ids: ids, loss_mask: mask, behaviour_logprobs: mask.map((m) => (m ? -7.5 : 0)),
        group_id: `g${g}`, reward: (i + g) % 2 });
    }
  }
  return withAdvantages(out, { scale_rewards: true, adv_eps: 1e-6 });
}


describe('RlSession (real python child)', () => {
  let model = '';
  let py = '';
  beforeAll(async () => { py = await python(); model = await tinyModel(); }, 240_000);

  it('trains steps, exports ONNX that ORT runs like torch, skips a replayed step', async () => {
    const ckpt = `${model}-ckpt`, onnx = `${model}-onnx-rl`, saved = `${model}-rl1`;
    const events: string[] = [];
    const s = await RlSession.start({ python: py, onEvent: (e) => { if (e.event === 'metric') events.push(e.name); } });
    const common = { model_dir: model, checkpoint_dir: ckpt, lr: 1e-3, device: 'cpu' as const, eps_high: 0.28 };
    const st = await s.state({ ...common, export_dir: onnx });
    expect(st).toMatchObject({ op: 'state', step: 0, skipped: false, resumed_from: null, export: { mode: 'full', policy_version: 0 } });
    const r1 = await s.step({ ...common, step: 1, samples: samples(), export_dir: onnx, save_dir: saved, tis_cap: 2 });
    expect(r1.step).toBe(1);
    expect(r1.export).toMatchObject({ mode: 'weights', policy_version: 1 });
    expect(r1.metrics.tis_trunc_frac).toBeGreaterThan(0);
    expect(r1.metrics.tokens).toBe(samples().reduce((a, r) => a + r.loss_mask.reduce((x, y) => x + y, 0), 0));
    for (const k of ['loss', 'clip_frac', 'entropy', 'mismatch_kl', 'tis_mean', 'grad_norm', 'adv_abs_mean']) expect(events).toContain(k);
    expect(existsSync(join(ckpt, 'step-000001.pt'))).toBe(true);
    expect(JSON.parse(readFileSync(join(onnx, 'meta.json'), 'utf8')).policy_version).toBe(1);

    const ids = [samples()[0].input_ids, samples()[4].input_ids.slice(0, 9)];
    const ref = await runNode('forward', { model_dir: saved, input_ids: ids }, { python: py, result: ForwardResult });
    const got = await ortLogits(onnx, ids);
    const want = ref.logits.flatMap((row) => row[row.length - 1]); // the graph returns each row's last position
    expect(got.length).toBe(want.length);
    expect(Math.max(...want.map((v, i) => Math.abs(v - got[i])))).toBeLessThan(1e-4);

    const again = await s.step({ ...common, step: 1, samples: samples() });
    expect(again).toMatchObject({ skipped: true, step: 1 });
    await s.close();
  }, 240_000);

  it('a failing request rejects with the Python error and stderr tail; later calls reject too', async () => {
    const s = await RlSession.start({ python: py });
    const err = await s.state({ model_dir: `${model}-missing` }).catch((e) => e);
    expect(err).toMatchObject({ name: 'NodeError', command: 'rl-session' });
    expect(String(err.message)).toMatch(/config\.json is missing/);
    await expect(s.step({ model_dir: model, step: 1, samples: samples() })).rejects.toThrow(/config\.json is missing/);
  }, 120_000);

  it('an invalid request is refused before it reaches Python', async () => {
    const s = await RlSession.start({ python: py });
    await expect(s.request({ model_dir: model, eps_low: 'x' } as never)).rejects.toThrow(/eps_low/);
    await s.close();
  }, 60_000);

  it('abort kills the child and rejects the pending step', async () => {
    const ac = new AbortController();
    const s = await RlSession.start({ python: py, signal: ac.signal });
    const p = s.state({ model_dir: model, device: 'cpu' });
    setTimeout(() => ac.abort(new Error('stop now')), 200);
    await expect(p).rejects.toThrow('stop now');
    await new Promise((r) => setTimeout(r, 300));
    expect(() => process.kill(s.pid!, 0)).toThrow();
  }, 60_000);
});
