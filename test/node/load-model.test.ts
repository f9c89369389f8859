/* load-model: HF cache layout resolution and the checks that make a directory usable (pure TS, no Python). */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkModelDir, hubCacheDir, resolveModelDir } from '../../operators/load-model.ts';

function fakeModel(dir: string, vocab: number, tokenizerIds: number): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'qwen3', vocab_size: vocab }));
  writeFileSync(join(dir, 'model.safetensors'), 'x');
  const vocabMap = Object.fromEntries(Array.from({ length: tokenizerIds - 1 }, (_, i) => [`t${i}`, i]));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ model: { vocab: vocabMap }, added_tokens: [{ id: tokenizerIds - 1, content: '<|im_end|>' }] }));
}

describe('load-model', () => {
  it('resolves org/name through $HF_HOME/hub refs and snapshots (symlinked blobs)', () => {
    const home = mkdtempSync(join(tmpdir(), 'af-hf-'));
    const repo = join(home, 'hub', 'models--acme--tiny');
    const rev = 'a'.repeat(40);
    fakeModel(join(repo, 'blobs-src'), 64, 64);
    mkdirSync(join(repo, 'refs'), { recursive: true });
    writeFileSync(join(repo, 'refs', 'main'), `${rev}\n`);
    const snap = join(repo, 'snapshots', rev);
    mkdirSync(snap, { recursive: true });
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) symlinkSync(join(repo, 'blobs-src', f), join(snap, f));

    const env = { HF_HOME: home };
    expect(hubCacheDir(env)).toBe(join(home, 'hub'));
    expect(resolveModelDir('acme/tiny', 'main', env)).toBe(snap);
    expect(resolveModelDir('acme/tiny', rev, env)).toBe(snap);
    expect(checkModelDir(snap)).toEqual([]);
    expect(() => resolveModelDir('acme/other', 'main', env)).toThrow(/not in the Hugging Face cache.*hf download acme\/other/);
    expect(() => resolveModelDir('acme/tiny', 'v2', env)).toThrow(/revision 'v2' of acme\/tiny is not in the cache/);
    expect(() => resolveModelDir('not a repo', 'main', env)).toThrow(/neither an existing directory nor/);
    const local = join(home, 'copy');
    cpSync(snap, local, { recursive: true, dereference: true });
    expect(resolveModelDir(local, 'main', {})).toBe(local);
    expect(readFileSync(join(local, 'config.json'), 'utf8')).toContain('qwen3');
  });

  it('refuses a tokenizer with more ids than the model vocabulary, and missing files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'af-m-'));
    fakeModel(dir, 50, 64);
    expect(checkModelDir(dir)).toEqual([expect.stringMatching(/tokenizer.json has 64 ids but config.json vocab_size is 50/)]);
    const empty = mkdtempSync(join(tmpdir(), 'af-m-'));
    expect(checkModelDir(empty).join('\n')).toMatch(/config.json is missing[\s\S]*no weights[\s\S]*tokenizer.json is missing/);
  });
});
