/*
 * resolve-model against a hub look-alike on 127.0.0.1 (test/models/hub-server.ts) serving a tiny model made here:
 * revision → commit sha in the key, the standard HF cache layout (refs, blobs named by checksum, relative snapshot
 * links), a second download that fetches nothing, HF_ENDPOINT/HF_TOKEN honoured, an interrupted download resumed
 * with a Range request, a checksum mismatch named; local dirs keyed on file hashes; GGUF headers validated; and every
 * bad input failing while keys are computed (before any node runs), naming the model and the fix.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { resolveModel, ResolveModelParams } from '../../operators/resolve-model.ts';
import { CHAT_TEMPLATE } from '../../runtime/agent/chat-template.ts';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { readGgufHeader } from '../../runtime/models/gguf.ts';
import { downloadSnapshot, resolveHubRevision, repoCacheDir } from '../../runtime/models/hub.ts';
import { gitOid, sha256 } from './hub-server.ts';
import { RemoteHub } from './hub-remote.ts';
import { ggufFile, tinyModelFiles } from './fixtures.ts';
import { pythonBin, runProcess } from '../fixtures/python.ts';

const CHATML = "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

let hub: RemoteHub;
let root: string;
let saved: NodeJS.ProcessEnv;
const files = tinyModelFiles({ weights: 100_000 });

beforeAll(async () => {
  hub = await RemoteHub.start();
  await hub.addRepo('org/tiny', files);
  await hub.addRepo('org/gated', files, { gated: true });
  await hub.addRepo('org/plain-chatml', tinyModelFiles({ template: CHATML, weights: 100 }));
});
afterAll(() => hub.close());
beforeEach(() => {
  saved = { ...process.env };
  root = mkdtempSync(join(tmpdir(), 'af-resolve-'));
  process.env.HF_HOME = join(root, 'hf');
  process.env.HF_ENDPOINT = hub.url;
  delete process.env.HF_TOKEN;
  delete process.env.HF_HUB_CACHE;
  delete process.env.HUGGING_FACE_HUB_TOKEN;
  delete process.env.HF_HUB_OFFLINE;
});
afterEach(() => {
  process.env = saved;
  rmSync(root, { recursive: true, force: true });
});

const run = (params: z.input<typeof ResolveModelParams>, store = join(root, 'store')) =>
  runDag(dag('resolve', (b) => { b.node('base', resolveModel, params); }), { storeDir: store });
const artifact = (store: string, key: string) => join(store, 'artifacts', key);
const resolveCount = async () => (await hub.log()).filter((l) => l.url.includes('/resolve/')).length;

describe('resolve-model: the hub', () => {
  it('downloads into the HF cache layout, keys on the commit sha, and a second download fetches nothing', async () => {
    const r = await run({ base: { kind: 'hub', repo: 'org/tiny' } });
    const node = r.nodes.get('base')!;
    expect(node.error).toBeUndefined();
    const sha = (await hub.ref('org/tiny'))!;
    const out = artifact(join(root, 'store'), node.key);
    for (const [p, b] of Object.entries(files)) expect(readFileSync(join(out, p)).equals(b), p).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'source.json'), 'utf8'))).toMatchObject({ kind: 'hub', repo: 'org/tiny', revision: 'main', sha });

    const cache = join(root, 'hf', 'hub', 'models--org--tiny');
    expect(readFileSync(join(cache, 'refs', 'main'), 'utf8')).toBe(sha);
    const link = join(cache, 'snapshots', sha, 'model.safetensors');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(`../../blobs/${sha256(files['model.safetensors'])}`); // LFS file: sha256
    expect(readlinkSync(join(cache, 'snapshots', sha, 'config.json'))).toBe(`../../blobs/${gitOid(files['config.json'])}`); // git blob oid
    expect(readdirSync(join(cache, 'blobs')).some((f) => f.endsWith('.incomplete'))).toBe(false);

    // Python tools find the same cache: huggingface_hub resolves it offline, transformers loads the tokenizer from it
    const py = await runProcess(await pythonBin(), ['-c', [
      'from huggingface_hub import snapshot_download', 'from transformers import AutoTokenizer',
      "p = snapshot_download('org/tiny', local_files_only=True)", "t = AutoTokenizer.from_pretrained('org/tiny', local_files_only=True)",
      "print(p); print(len(t('hello world')['input_ids']))"].join('\n')], { env: { ...process.env, HF_HUB_OFFLINE: '1' } });
    expect(py.stdout.trim().split('\n')).toEqual([join(cache, 'snapshots', sha), '2']);

    // hub blobs are immutable: the store hard-links them instead of a second copy
    expect(statSync(join(out, 'model.safetensors')).ino).toBe(statSync(link).ino);

    const before = await resolveCount();
    const again = await run({ base: { kind: 'hub', repo: 'org/tiny' } }, join(root, 'store2'));
    expect(again.nodes.get('base')!.key).toBe(node.key);
    expect(await resolveCount()).toBe(before); // every file came from the cache
  });

  it('HF_HUB_OFFLINE: the cached snapshot, same key, no request; a model not in the cache is named', async () => {
    const online = await run({ base: { kind: 'hub', repo: 'org/tiny' } });
    process.env.HF_HUB_OFFLINE = '1';
    const requests = (await hub.log()).length;
    const offline = await run({ base: { kind: 'hub', repo: 'org/tiny' } }, join(root, 'store-offline'));
    expect(offline.nodes.get('base')!.key).toBe(online.nodes.get('base')!.key);
    expect(offline.nodes.get('base')!.error).toBeUndefined();
    expect((await hub.log()).length).toBe(requests);
    await expect(run({ base: { kind: 'hub', repo: 'org/gated' } }, join(root, 'store-offline'))).rejects.toThrow(/HF_HUB_OFFLINE is set and org\/gated@main is not in the Hugging Face cache .*download it once online, or unset HF_HUB_OFFLINE/);
  });

  it('a moved branch changes the key; a pinned commit does not move', async () => {
    const first = await hub.addRepo('org/moving', tinyModelFiles({ weights: 100 }));
    const a = await run({ base: { kind: 'hub', repo: 'org/moving' } });
    await hub.addRepo('org/moving', { 'README.md': '# changed\n' });
    const b = await run({ base: { kind: 'hub', repo: 'org/moving' } });
    const pinned = await run({ base: { kind: 'hub', repo: 'org/moving', revision: first } });
    expect(b.nodes.get('base')!.key).not.toBe(a.nodes.get('base')!.key);
    expect(readFileSync(join(artifact(join(root, 'store'), b.nodes.get('base')!.key), 'README.md'), 'utf8')).toBe('# changed\n');
    expect(readFileSync(join(artifact(join(root, 'store'), pinned.nodes.get('base')!.key), 'README.md'), 'utf8')).toBe('# tiny\n');
  });

  it('an interrupted download resumes from where it stopped (Range request), and the result is intact', async () => {
    const weights = files['model.safetensors'];
    await hub.cutAfter('model.safetensors', 150_000);
    const r = await resolveHubRevision('org/tiny', 'main');
    await expect(downloadSnapshot(r)).rejects.toThrow(/model.safetensors/);
    const partial = join(repoCacheDir('org/tiny'), 'blobs', `${sha256(weights)}.incomplete`);
    // the server sends 150,000 bytes before it drops the connection; on a busy machine the client may have kept
    // fewer of them (bytes still in flight are lost with the socket): the resume starts wherever the file ends
    const have = statSync(partial).size;
    expect(have).toBeGreaterThan(0);
    expect(have).toBeLessThanOrEqual(150_000);
    const report = await downloadSnapshot(r);
    expect(report.resumed).toBe(1);
    expect((await hub.log()).some((l) => l.url.endsWith('/model.safetensors') && l.range === `bytes=${have}-${weights.length - 1}`)).toBe(true);
    expect(readFileSync(join(report.snapshot, 'model.safetensors')).equals(weights)).toBe(true);
  });

  it('concurrent downloads of one repo: one writer per file, the other waits; both get the snapshot', async () => {
    await hub.addRepo('org/concurrent', tinyModelFiles({ weights: 200_000 }));
    const gets = async () => (await hub.log()).filter((l) => l.url.startsWith('/org/concurrent/resolve/') && l.range !== 'bytes=0-0').length;
    const r = await resolveHubRevision('org/concurrent', 'main');
    const [a, b] = await Promise.all([downloadSnapshot(r), downloadSnapshot(r)]);
    expect(a.snapshot).toBe(b.snapshot);
    expect(a.downloaded + b.downloaded).toBe(a.files); // every file fetched once, by one of them
    expect(await gets()).toBe(a.files);
    expect(readdirSync(join(repoCacheDir('org/concurrent'), 'blobs')).filter((f) => f.includes('.'))).toEqual([]); // no lock or partial left
  });

  it('a checksum mismatch is an error naming the file; nothing is linked, the partial file is removed', async () => {
    await hub.corrupt(['tokenizer.json']);
    try {
      const r = await resolveHubRevision('org/tiny', 'main');
      await expect(downloadSnapshot(r)).rejects.toThrow(/org\/tiny: downloaded tokenizer.json does not match the hub's checksum \(sha256 [0-9a-f]{64}/);
      expect(existsSync(join(repoCacheDir('org/tiny'), 'snapshots', r.sha, 'tokenizer.json'))).toBe(false);
      expect(readdirSync(join(repoCacheDir('org/tiny'), 'blobs')).some((f) => f.endsWith('.incomplete'))).toBe(false);
    } finally {
      await hub.corrupt([]);
    }
  });

  it('bad hub inputs fail before any node runs, naming the model and the fix; nothing is committed', async () => {
    const store = join(root, 'store');
    await expect(run({ base: { kind: 'hub', repo: 'org/missing' } }, store)).rejects.toThrow(/resolve-model \(org\/missing@main\): org\/missing does not exist on the hub \(or it is private and no HF_TOKEN is set\) \(HTTP 401\); check the repo id/);
    await expect(run({ base: { kind: 'hub', repo: 'org/tiny', revision: 'v9' } }, store)).rejects.toThrow(/revision 'v9' of org\/tiny does not resolve.*pass an existing revision/);
    await expect(run({ base: { kind: 'hub', repo: 'org/gated' } }, store)).rejects.toThrow(/org\/gated is a gated model and no token is set.*set HF_TOKEN/);
    expect(existsSync(join(store, 'artifacts')) ? readdirSync(join(store, 'artifacts')) : []).toEqual([]);
    // the template is only known after the download: the node fails, before anything downstream, and commits nothing
    const chatml = await run({ base: { kind: 'hub', repo: 'org/plain-chatml' } }, store);
    expect(chatml.nodes.get('base')!.error).toMatch(/org\/plain-chatml@main \(snapshot .*\): the chat template .* drops the tool list .*pass a tools-aware template as params.chat_template/);
    expect(existsSync(join(store, 'artifacts', chatml.nodes.get('base')!.key))).toBe(false);
    expect((await hub.log()).filter((l) => l.url.includes('/org/gated/resolve/'))).toEqual([]); // refused before any download
  });

  it('HF_TOKEN is sent: a gated repo downloads with it, a bad token is named', async () => {
    process.env.HF_TOKEN = 'hf_test_token';
    const r = await run({ base: { kind: 'hub', repo: 'org/gated' } });
    expect(r.nodes.get('base')!.error).toBeUndefined();
    expect((await hub.log()).filter((l) => l.url.includes('/org/gated/resolve/')).every((l) => l.auth === 'Bearer hf_test_token')).toBe(true);
    process.env.HF_TOKEN = 'hf_wrong';
    await expect(run({ base: { kind: 'hub', repo: 'org/gated' } }, join(root, 's2'))).rejects.toThrow(/org\/gated: the hub refused the token \(401\); check HF_TOKEN/);
  });

  it('a template that drops tools is accepted with a chat_template override, which travels with the model', async () => {
    await hub.addRepo('org/jinja', { ...tinyModelFiles({ template: null, weights: 100 }), 'chat_template.jinja': CHATML });
    const r = await run({ base: { kind: 'hub', repo: 'org/jinja' }, chat_template: CHAT_TEMPLATE });
    const out = artifact(join(root, 'store'), r.nodes.get('base')!.key);
    expect(readFileSync(join(out, 'chat_template.jinja'), 'utf8')).toBe(CHAT_TEMPLATE);
    // the override replaced the store's file, not the hub blob it was linked to
    const sha = (await hub.ref('org/jinja'))!;
    expect(readFileSync(join(repoCacheDir('org/jinja'), 'snapshots', sha, 'chat_template.jinja'), 'utf8')).toBe(CHATML);
  });
});

describe('resolve-model: local dirs and GGUF', () => {
  const writeDir = (fs: Record<string, Buffer>) => {
    const d = join(root, `m${Math.random().toString(36).slice(2)}`);
    mkdirSync(d);
    for (const [p, b] of Object.entries(fs)) writeFileSync(join(d, p), b);
    return d;
  };

  it('a local dir is keyed on its file hashes: same bytes same key, an edit reruns', async () => {
    const dir = writeDir(tinyModelFiles({ weights: 100 }));
    const a = await run({ base: { kind: 'path', dir } });
    writeFileSync(join(dir, 'README.md'), '# tiny\n'); // same bytes, new mtime
    const b = await run({ base: { kind: 'path', dir } });
    writeFileSync(join(dir, 'README.md'), '# edited\n');
    const c = await run({ base: { kind: 'path', dir } });
    expect(b.nodes.get('base')!.key).toBe(a.nodes.get('base')!.key);
    expect(c.nodes.get('base')!.key).not.toBe(a.nodes.get('base')!.key);
  });

  it('a dir of an architecture the exporter does not support fails before anything runs, naming the supported ones', async () => {
    const fs = tinyModelFiles({ weights: 100 });
    fs['config.json'] = Buffer.from(JSON.stringify({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: 151936 }));
    const dir = writeDir(fs);
    await expect(run({ base: { kind: 'path', dir } })).rejects.toThrow(new RegExp(`model dir ${dir} is a 'gpt2' model; the ONNX exporter \\(and so the rollout engines\\) supports llama, qwen2, qwen3`));
  });

  it('a dir with no tokenizer or no chat template fails before anything runs, naming the dir and the fix', async () => {
    const noTok = writeDir(tinyModelFiles({ weights: 100, tokenizer: false }));
    const noTpl = writeDir(tinyModelFiles({ weights: 100, template: null }));
    await expect(run({ base: { kind: 'path', dir: noTok } })).rejects.toThrow(new RegExp(`model dir ${noTok} is not usable:\\n  - tokenizer.json is missing`));
    await expect(run({ base: { kind: 'path', dir: noTpl } })).rejects.toThrow(/is not usable:\n {2}- no chat template \(neither chat_template.jinja nor chat_template in tokenizer_config.json\); pass one as params.chat_template/);
    const ok = await run({ base: { kind: 'path', dir: noTpl }, chat_template: CHAT_TEMPLATE });
    expect(ok.nodes.get('base')!.error).toBeUndefined();
  });

  it('GGUF: the header is validated while keys are computed (types, architecture, template)', async () => {
    const good = join(root, 'm.gguf');
    writeFileSync(good, ggufFile({ types: [8, 0, 12, 30] }));
    const h = readGgufHeader(good);
    expect([h.version, h.architecture, h.types]).toEqual([3, 'llama', { Q8_0: 1, F32: 1, Q4_K: 1, BF16: 1 }]);
    expect(h.chatTemplate).toBe(CHAT_TEMPLATE);
    // (the conversion of a real tiny GGUF into a Hugging Face dir: test/models/gguf-convert.test.ts)
    const undequantizable = join(root, 'k.gguf');
    writeFileSync(undequantizable, ggufFile({ types: [8, 15] }));
    await expect(run({ base: { kind: 'gguf', file: undequantizable } })).rejects.toThrow(/GGUF .*k.gguf: tensor blk.1.weight is Q8_K, a quantization the GGUF loader cannot dequantize .*re-quantize/);
    const gpt2 = join(root, 'g.gguf');
    writeFileSync(gpt2, ggufFile({ types: [0], architecture: 'gpt2' }));
    await expect(run({ base: { kind: 'gguf', file: gpt2 } })).rejects.toThrow(/GGUF .*g.gguf is a 'gpt2' model; the ONNX exporter \(and so the rollout engines\) supports llama, qwen2, qwen3/);
    const unknown = join(root, 'u.gguf');
    writeFileSync(unknown, ggufFile({ types: [8, 99] }));
    await expect(run({ base: { kind: 'gguf', file: unknown } })).rejects.toThrow(/GGUF .*u.gguf: tensor blk.1.weight uses an unknown quantization \(ggml type 99\); re-quantize/);
    const notGguf = join(root, 'x.gguf');
    writeFileSync(notGguf, ggufFile({ types: [0], magic: 'GGML' }));
    expect(() => readGgufHeader(notGguf)).toThrow(/not a GGUF file \(magic "GGML"/);
    const truncated = join(root, 't.gguf');
    writeFileSync(truncated, ggufFile({ types: [0] }).subarray(0, 60));
    expect(() => readGgufHeader(truncated)).toThrow(/ends early.*truncated/);
    const plain = join(root, 'p.gguf');
    writeFileSync(plain, ggufFile({ types: [2, 3], chatTemplate: CHATML }));
    await expect(run({ base: { kind: 'gguf', file: plain } })).rejects.toThrow(/the chat template of GGUF .*p.gguf drops the tool list .*pass a tools-aware template as params.chat_template/);
    const noTemplate = join(root, 'n.gguf');
    writeFileSync(noTemplate, ggufFile({ types: [0], chatTemplate: null }));
    await expect(run({ base: { kind: 'gguf', file: noTemplate } })).rejects.toThrow(/has no chat template \(tokenizer.chat_template\); pass one as params.chat_template/);
  });
});
