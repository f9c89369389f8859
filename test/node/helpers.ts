/* Shared bits of the runtime-node tests: the interpreter and a tiny model built by the real init-model command. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePythonEnv } from '../../runtime/node/env.ts';
import { runNode } from '../../runtime/node/client.ts';
import { InitModelResult } from '../../runtime/node/protocol.ts';
import { CHAT_TEMPLATE } from '../../runtime/agent/chat-template.ts';

export const python = async (): Promise<string> => (await ensurePythonEnv()).python;

export const TINY = { vocab_size: 300, hidden_size: 64, num_layers: 2, num_heads: 4, num_kv_heads: 2, head_dim: 16,
  intermediate_size: 128, max_position_embeddings: 256 };

export const CORPUS = Array.from({ length: 40 }, (_, i) =>
  `<|im_start|>user\nadd ${i} and ${(i * 7) % 13}<|im_end|>\n<|im_start|>assistant\n<tool_call>\n` +
  `{"name": "add", "arguments": {"a": ${i}, "b": ${(i * 7) % 13}}}\n</tool_call><|im_end|>\n`);

export async function tinyModel(): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'af-gpu-')), 'model');
  await runNode('init-model', { out_dir: dir, chat_template: CHAT_TEMPLATE, texts: CORPUS, ...TINY },
    { python: await python(), result: InitModelResult });
  return dir;
}
