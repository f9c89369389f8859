/*
 * A GGUF base model end to end: a tiny llama GGUF (Q8_0) written here with gguf-py's GGUFWriter from a random model
 * and the tiny init-model tokenizer, resolved by resolve-model and by load-model's string form. Both store the same
 * Hugging Face dir (dequantized by the runtime node's convert-gguf): safetensors, a llama config without
 * quantization_config, the tokenizer, the GGUF's own template as chat_template.jinja; keyed on the GGUF's bytes.
 * A tensor of an unknown ggml type fails while keys are computed, naming the file, the tensor and the type.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../operators/load-model.ts';
import { resolveModel } from '../../operators/resolve-model.ts';
import { CHAT_TEMPLATE } from '../../runtime/agent/chat-template.ts';
import { loadChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { readGgufHeader } from '../../runtime/models/gguf.ts';
import { python, tinyModel } from '../node/helpers.ts';
import { REPO, runProcess } from '../fixtures/python.ts';

let root: string;
let gguf: string;

/** Writes a GGUF with runtime/node/tests/gguf_fixtures.py (the same writer the Python tests use). */
async function writeGguf(tokDir: string, out: string, arch: string, qtype: string, template: string): Promise<void> {
  const r = await runProcess(await python(), ['gguf_fixtures.py', JSON.stringify({ gguf: [arch, tokDir, out, qtype, template] })], { cwd: join(REPO, 'runtime/node/tests') });
  if (r.code !== 0) throw new Error(`writing ${out} failed: ${r.stderr.slice(-2000)}`);
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'af-gguf-'));
  gguf = join(root, 'tiny-llama.Q8_0.gguf');
  await writeGguf(await tinyModel(), gguf, 'llama', 'Q8_0', CHAT_TEMPLATE);
}, 180_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const store = () => join(root, 'store');
const artifact = (key: string) => join(store(), 'artifacts', key);

describe('a GGUF base model', () => {
  it('resolve-model and load-model dequantize it into the same Hugging Face dir, keyed on the GGUF', async () => {
    expect(readGgufHeader(gguf).types).toMatchObject({ Q8_0: expect.any(Number), F32: expect.any(Number) });
    const r = await runDag(dag('gguf', (b) => {
      b.node('resolved', resolveModel, { base: { kind: 'gguf', file: gguf } });
      b.node('loaded', loadModel, { source: gguf });
    }), { storeDir: store() });
    for (const id of ['resolved', 'loaded']) expect(r.nodes.get(id)!.error, id).toBeUndefined();
    const [a, b] = ['resolved', 'loaded'].map((id) => artifact(r.nodes.get(id)!.key));
    const files = readdirSync(a).filter((f) => !f.startsWith('.')).sort();
    expect(files).toEqual(expect.arrayContaining(['chat_template.jinja', 'config.json', 'model.safetensors', 'source.json', 'tokenizer.json']));
    expect(files).not.toContain('model.gguf');
    const config = JSON.parse(readFileSync(join(a, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect([config.model_type, config.quantization_config, config.tie_word_embeddings]).toEqual(['llama', undefined, true]);
    expect(readFileSync(join(a, 'chat_template.jinja'), 'utf8')).toBe(CHAT_TEMPLATE);
    expect(readFileSync(join(a, 'model.safetensors')).equals(readFileSync(join(b, 'model.safetensors')))).toBe(true);
    const source = JSON.parse(readFileSync(join(a, 'source.json'), 'utf8')) as Record<string, unknown>;
    expect(source).toMatchObject({ kind: 'gguf', architecture: 'llama', model_class: 'LlamaForCausalLM' });
    // the TS tokenizer reads the converted dir with the GGUF's own template
    const tok = loadChatTokenizer(a);
    expect(tok.templateOrigin).toBe('chat_template.jinja');
    // same bytes → same key (no second conversion); the key follows the GGUF's content
    const again = await runDag(dag('gguf', (d) => { d.node('resolved', resolveModel, { base: { kind: 'gguf', file: gguf } }); }), { storeDir: store() });
    expect(again.nodes.get('resolved')!.key).toBe(r.nodes.get('resolved')!.key);
    expect(again.nodes.get('resolved')!.status).toBe('cached');
  }, 300_000);

  it('a tensor of an unknown ggml type fails before any node runs, naming file, tensor and type', async () => {
    const bad = join(root, 'bad.gguf');
    const bytes = Buffer.from(readFileSync(gguf));
    const name = Buffer.from('blk.1.ffn_up.weight');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(name.length));
    let at = bytes.indexOf(Buffer.concat([len, name]));
    expect(at).toBeGreaterThan(0);
    at += 8 + name.length;
    at += 4 + 8 * bytes.readUInt32LE(at);
    bytes.writeUInt32LE(99, at);
    writeFileSync(bad, bytes);
    const r = runDag(dag('bad', (b) => { b.node('base', loadModel, { source: bad }); }), { storeDir: join(root, 'store-bad') });
    await expect(r).rejects.toThrow(/load-model \(.*bad.gguf\): GGUF .*bad.gguf: tensor blk.1.ffn_up.weight uses an unknown quantization \(ggml type 99\); re-quantize/);
    const arts = join(root, 'store-bad', 'artifacts');
    expect(existsSync(arts) ? readdirSync(arts) : []).toEqual([]);
  });
});
