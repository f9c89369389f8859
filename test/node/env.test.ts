/* Python env bootstrap: a real venv from a (tiny) requirements file, idempotent, redone after a killed attempt. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensurePythonEnv, PythonEnvError, venvDirFor } from '../../runtime/node/env.ts';

describe('ensurePythonEnv', () => {
  it('creates a venv keyed by the requirements hash, then returns at once; a killed bootstrap is redone', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'af-env-'));
    const requirements = join(cacheDir, 'requirements.txt');
    writeFileSync(requirements, '# no packages: the venv machinery is what is under test\n');
    const venvDir = venvDirFor(requirements, cacheDir);
    // A bootstrap killed half-way leaves a venv dir without the marker.
    mkdirSync(join(venvDir, 'bin'), { recursive: true });
    writeFileSync(join(venvDir, 'bin', 'python'), 'half-written');

    const env = await ensurePythonEnv({ requirements, cacheDir, onLog: () => {} });
    expect(env.venvDir).toBe(venvDir);
    expect(env.venvDir).toMatch(/venv-[0-9a-f]{16}$/);
    expect(statSync(env.python).size).toBeGreaterThan(100); // a real interpreter replaced the stub
    const marker = join(venvDir, '.agentforge-ready');
    const stamp = statSync(marker).mtimeMs;

    const again = await ensurePythonEnv({ requirements, cacheDir, onLog: () => { throw new Error('must not log'); } });
    expect(again).toEqual(env);
    expect(statSync(marker).mtimeMs).toBe(stamp);
    expect(readdirSync(cacheDir).filter((n) => n.endsWith('.lock'))).toEqual([]);

    writeFileSync(requirements, '# changed\n');
    expect(venvDirFor(requirements, cacheDir)).not.toBe(venvDir);
  }, 120_000);

  it('names the fix when Python is missing', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'af-env-'));
    const requirements = join(cacheDir, 'requirements.txt');
    writeFileSync(requirements, '\n');
    const err = await ensurePythonEnv({ requirements, cacheDir, basePython: '/nonexistent/python3' }).catch((e) => e);
    expect(err).toBeInstanceOf(PythonEnvError);
    expect(err.message).toMatch(/needs Python.*apt-get install -y python3 python3-venv/);
    expect(existsSync(join(venvDirFor(requirements, cacheDir), '.agentforge-ready'))).toBe(false);
  });
});
