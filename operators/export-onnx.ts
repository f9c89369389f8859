/*
 * export-onnx: the model as ONNX with KV-cache inputs/outputs (see runtime/node/agentforge_node/onnx_export.py for
 * the graph signature), plus meta.json and the tokenizer/config files, so TS engines decode incrementally.
 */
import { files, model, operator } from '../runtime/engine/operator.ts';
import { runNode } from '../runtime/node/client.ts';
import { forwardEvents, nodeCode } from '../runtime/node/bridge.ts';
import { ExportOnnxParams, ExportOnnxResult } from '../runtime/node/protocol.ts';

export const exportOnnx = operator({
  name: 'export-onnx',
  version: 3,
  description: 'ONNX export with KV cache (opset 18) + meta.json for onnxruntime-node',
  params: ExportOnnxParams,
  inputs: { model: model() },
  output: files(),
  codeDeps: nodeCode('commands/export_onnx.py'),
  async run({ params, inputs, out, ctx }) {
    const res = await runNode('export-onnx', { model_dir: inputs.model.dir, out_dir: out.dir, ...params },
      { signal: ctx.signal, onEvent: forwardEvents(ctx), result: ExportOnnxResult });
    ctx.log(`export-onnx: ${res.meta.num_layers} layers, vocab ${res.meta.vocab_size}, policy v${res.meta.policy_version}`);
  },
});
