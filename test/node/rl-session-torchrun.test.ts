/*
 * The RL trainer session under torchrun (nproc 2, FSDP, gloo on CPU) with LoRA, through the TS client: the
 * per-version ONNX export that the engines load holds the merged policy (ORT logits = torch on the saved dir), and
 * the saved dir carries the adapter beside the merged weights.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runNode } from '../../runtime/node/client.ts';
import { ForwardResult, type RlSample } from '../../runtime/node/protocol.ts';
import { RlSession } from '../../runtime/node/rl-session.ts';
import { ortLogits, python, tinyModel } from './helpers.ts';

function samples(): RlSample[] {
  return Array.from({ length: 6 }, (_, i) => {
    const ids = [11, 20, 30, 40, ...Array.from({ length: 5 + (i % 3) }, (_, j) => 50 + ((i * 37 + j * 7) % 200))];
    const mask = ids.map((_, j) => (j >= 4 ? 1 : 0));
    return { input_ids: ids, loss_mask: mask, behaviour_logprobs: mask.map((m) => (m ? -5.5 : 0)), advantage: i % 2 ? 1 : -1 };
  });
}


describe('RlSession under torchrun (FSDP + LoRA)', () => {
  let model = '';
  let py = '';
  beforeAll(async () => { py = await python(); model = await tinyModel(); }, 240_000);

  it('trains on 2 ranks and exports the merged policy', async () => {
    const onnx = `${model}-onnx-fsdp`, saved = `${model}-rl-fsdp`;
    const s = await RlSession.start({ python: py, nproc: 2, env: { AGENTFORGE_TORCH_THREADS: '1' } });
    try {
      const common = { model_dir: model, checkpoint_dir: `${model}-ckpt-fsdp`, lr: 1e-2, device: 'cpu' as const,
        micro_batch_size: 2, parallel: 'fsdp' as const, lora: { r: 4, alpha: 8 } };
      expect(await s.state({ ...common, export_dir: onnx })).toMatchObject({ step: 0, export: { mode: 'full' } });
      const r1 = await s.step({ ...common, step: 1, samples: samples(), export_dir: onnx, save_dir: saved });
      expect(r1).toMatchObject({ step: 1, export: { mode: 'weights', policy_version: 1 } });
      expect(r1.metrics.grad_norm).toBeGreaterThan(0);
      expect(existsSync(join(saved, 'adapter', 'adapter_model.safetensors'))).toBe(true);

      const ids = [samples()[0].input_ids.slice(0, 7), samples()[4].input_ids.slice(0, 7)];
      const ref = await runNode('forward', { model_dir: saved, input_ids: ids }, { python: py, result: ForwardResult });
      const want = ref.logits.flatMap((row) => row[row.length - 1]);
      const got = await ortLogits(onnx, ids);
      expect(Math.max(...want.map((v, i) => Math.abs(v - got[i])))).toBeLessThan(1e-4);
    } finally {
      await s.close();
    }
  }, 300_000);
});
