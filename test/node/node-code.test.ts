import { describe, expect, it } from 'vitest';
import { codeFiles } from '../../runtime/engine/fingerprint.ts';
import { initModel } from '../../operators/init-model.ts';
import { trainSft } from '../../operators/train-sft.ts';
import { trainRl } from '../../operators/train-rl.ts';
import { exportOnnx } from '../../operators/export-onnx.ts';
import { merge } from '../../operators/merge.ts';

const node = (f: string) => `runtime/node/agentforge_node/${f}`;
const filesOf = (op: { module: string; codeDeps?: string[] }) => Object.keys(codeFiles(op.module, op.codeDeps));

describe('node operators key on the Python modules their command imports', () => {
  it.each([
    [trainSft, ['commands/train_sft.py', 'sft.py', 'shards.py', 'device.py', 'protocol.py', 'requests/train_sft.py'], ['merge/kernels.py', 'onnx_export.py', 'grpo.py', 'requests/train_rl.py', 'requests/merge.py']],
    [trainRl, ['rl_session.py', 'rl_trainer.py', 'grpo.py', 'onnx_export.py', 'device.py', 'requests/train_rl.py'], ['sft.py', 'merge/kernels.py', 'requests/train_sft.py']],
    [merge, ['commands/merge.py', 'merge/kernels.py', 'merge/methods.py', 'merge/safetensors_io.py'], ['sft.py', 'rl_trainer.py']],
    [exportOnnx, ['commands/export_onnx.py', 'onnx_export.py', 'modeling.py'], ['sft.py', 'rl_trainer.py']],
    [initModel, ['commands/init_model.py', 'modeling.py'], ['sft.py']],
  ])('%#', (op, has, lacks) => {
    const files = filesOf(op);
    for (const f of [...has.map(node), node('__main__.py'), node('__init__.py'), 'runtime/node/requirements.txt', 'runtime/node/client.ts']) expect(files).toContain(f);
    for (const f of lacks.map(node)) expect(files).not.toContain(f);
    expect(files.filter((f) => f.startsWith('runtime/node/tests/') || f.startsWith('runtime/node/bench/'))).toEqual([]);
  });
});
