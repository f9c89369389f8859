/*
 * export-onnx: the model as ONNX with KV-cache inputs/outputs (see runtime/node/agentforge_node/onnx_export.py for
 * the graph signature), plus meta.json and the tokenizer/config/chat-template files, so TS engines decode
 * incrementally with the model's own template. `dtype` fp16/int8 shrinks the weights; I/O stays float32.
 */
import { files, model, operator } from '../runtime/engine/operator.ts';
import { runNode } from '../runtime/node/client.ts';
import { forwardEvents, nodeCode } from '../runtime/node/bridge.ts';
import { ExportOnnxParams, ExportOnnxResult } from '../runtime/node/protocol.ts';

export const exportOnnx = operator({
  name: 'export-onnx',
  version: 4,
  description: 'ONNX export with KV cache (opset 18; fp32 | fp16 | int8 weights, a tied embedding stored once) + meta.json and template for onnxruntime-node',
  params: ExportOnnxParams,
  inputs: { model: model() },
  output: files(),
  codeDeps: [...nodeCode('commands/export_onnx.py'), 'runtime/node/agentforge_node/onnx_export.py'],
  async run({ params, inputs, out, ctx }) {
    const res = await runNode('export-onnx', { model_dir: inputs.model.dir, out_dir: out.dir, ...params },
      { signal: ctx.signal, onEvent: forwardEvents(ctx), result: ExportOnnxResult });
    ctx.log(`export-onnx: ${res.meta.num_layers} layers, vocab ${res.meta.vocab_size}, ${res.dtype} weights, ${(res.bytes / 2 ** 20).toFixed(1)} MiB, policy v${res.meta.policy_version}`);
  },
});
