/*
 * init-model: the embedded default model. Renders the corpus trajectories with the pipeline's chat template, then
 * the runtime node trains a byte-level BPE tokenizer on them and initialises a tiny Qwen3 (a few M parameters by
 * default) around it, writing an HF directory whose tokenizer_config.json carries the same chat template.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { model, operator, table } from '../runtime/engine/operator.ts';
import { runNode } from '../runtime/node/client.ts';
import { forwardEvents, nodeCode } from '../runtime/node/bridge.ts';
import { InitModelParams, InitModelResult } from '../runtime/node/protocol.ts';
import { CHAT_TEMPLATE } from '../runtime/agent/chat-template.ts';
import { Trajectory } from '../schemas/trajectory.ts';

/** One training text per trajectory: the conversation exactly as SFT and rollouts will render it. */
export function renderCorpus(rows: Trajectory[]): string[] {
  const template = new Template(CHAT_TEMPLATE);
  return rows.map((t) => template.render({
    messages: t.messages.map((m) => ({ ...m, content: m.content ?? '', tool_calls: m.tool_calls ?? [] })),
    tools: t.tools.length ? t.tools : undefined,
    add_generation_prompt: false,
  }));
}

export const initModel = operator({
  name: 'init-model',
  version: 2,
  description: 'byte-level BPE tokenizer trained on the corpus + a freshly initialised tiny Qwen3',
  params: InitModelParams,
  inputs: { corpus: table(Trajectory, 'trajectories') },
  output: model(),
  codeDeps: nodeCode('commands/init_model.py'),
  async run({ params, inputs, out, ctx }) {
    const texts = renderCorpus(await inputs.corpus.all());
    if (texts.length === 0) throw new Error(`init-model: the corpus input (node ${inputs.corpus.node}) has no trajectories to train the tokenizer on`);
    // One JSON string per line: the corpus can be far larger than a comfortable stdin request.
    const textFile = join(ctx.tmpDir, 'corpus.jsonl');
    writeFileSync(textFile, texts.map((t) => JSON.stringify(t)).join('\n') + '\n');
    const res = await runNode('init-model', { ...params, out_dir: out.dir, chat_template: CHAT_TEMPLATE, text_file: textFile },
      { signal: ctx.signal, onEvent: forwardEvents(ctx), result: InitModelResult });
    ctx.log(`init-model: ${res.num_parameters.toLocaleString('en-US')} parameters, vocab ${res.vocab_size}`);
  },
});
