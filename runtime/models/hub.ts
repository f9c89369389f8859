/*
 * The Hugging Face Hub through @huggingface/hub: a repo id + revision resolved to its commit sha, and the snapshot
 * downloaded into the standard cache layout that Python tools share:
 *   $HF_HUB_CACHE (default $HF_HOME/hub) / models--org--name / refs/<revision>      (the commit sha)
 *                                                          / blobs/<etag>           (sha256 for LFS files, git oid else)
 *                                                          / snapshots/<sha>/<path> (relative symlink to the blob)
 * A file whose snapshot link exists is not fetched again. A download streams into blobs/<etag>.incomplete, which a
 * later attempt continues with a Range request (the library's WebBlob.slice); the finished blob is checked against
 * the tree's checksum (LFS sha256, else the git blob sha1) before it is renamed into place.
 * HF_ENDPOINT and HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) are honoured.
 */
import { downloadFile, getRepoFolderName, listFiles, modelInfo, type ListFileEntry } from '@huggingface/hub';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

export interface HubOptions {
  /** Hub base URL; default HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default HF_TOKEN, else HUGGING_FACE_HUB_TOKEN. */
  token?: string;
  /** Default HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
}

export const hubEndpoint = (o: HubOptions = {}): string =>
  (o.endpoint ?? (o.env ?? process.env).HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
export const hubToken = (o: HubOptions = {}): string | undefined => {
  const env = o.env ?? process.env;
  return o.token ?? (env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined);
};
export function hubCacheDir(o: HubOptions = {}): string {
  const env = o.env ?? process.env;
  if (o.cacheDir) return o.cacheDir;
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  return join(env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface'), 'hub');
}

export const REPO_ID = /^[\w.-]+\/[\w.-]+$/;
const COMMIT = /^[0-9a-f]{40}$/;

/** A hub failure the user can act on: not found, bad revision, gated, unauthorized, or a corrupt download. */
export class HubError extends Error {
  constructor(message: string, readonly code: 'repo_not_found' | 'revision_not_found' | 'gated' | 'unauthorized' | 'checksum' | 'other') {
    super(message);
    this.name = 'HubError';
  }
}

interface Failure { status?: number; errorCode?: string | null; message: string }

/** A fetch that remembers the hub's X-Error-Code of the last failed response (the library's errors drop headers). */
function recordingFetch(): { fetch: typeof fetch; last: () => string | null } {
  let code: string | null = null;
  return {
    fetch: async (input, init) => {
      const res = await fetch(input, init);
      if (!res.ok) code = res.headers.get('x-error-code');
      return res;
    },
    last: () => code,
  };
}

/** The hub's answer → an error that names the repo and the fix. */
export function hubFailure(repo: string, revision: string, f: Failure, token: boolean): HubError {
  const code = f.errorCode ?? '';
  // (the code, not the message: the library's messages carry the request URL, whose expand= list names "gated")
  if (code === 'GatedRepo') {
    return new HubError(token
      ? `${repo} is a gated model and this token has no access; accept its terms on the hub page of ${repo} with the account the token belongs to`
      : `${repo} is a gated model and no token is set; accept its terms on its hub page, then set HF_TOKEN to a token of that account`, 'gated');
  }
  if (code === 'RevisionNotFound') {
    return new HubError(`revision '${revision}' of ${repo} does not resolve (no such branch, tag or commit); pass an existing revision (e.g. main)`, 'revision_not_found');
  }
  if (code === 'RepoNotFound' || f.status === 404 || (f.status === 401 && !token)) {
    return new HubError(`${repo} does not exist on the hub${token ? '' : ' (or it is private and no HF_TOKEN is set)'} ` +
      `(HTTP ${f.status ?? '?'}); check the repo id (org/name)${token ? '' : ', or set HF_TOKEN for a private repo'}`, 'repo_not_found');
  }
  if (f.status === 401 || f.status === 403) return new HubError(`${repo}: the hub refused the token (${f.status}); check HF_TOKEN`, 'unauthorized');
  return new HubError(`${repo}@${revision}: hub request failed (${f.status ?? 'network'}): ${f.message}`, 'other');
}

export interface ResolvedRevision { repo: string; revision: string; sha: string; gated: false | 'auto' | 'manual' }

/** revision (branch, tag or sha) → commit sha; a gated repo without a token fails here, before any download. */
export async function resolveHubRevision(repo: string, revision: string, o: HubOptions = {}): Promise<ResolvedRevision> {
  if (!REPO_ID.test(repo)) throw new HubError(`'${repo}' is not a hub repo id; write it as org/name`, 'repo_not_found');
  const token = hubToken(o);
  const rec = recordingFetch();
  let info: { sha?: string; gated?: false | 'auto' | 'manual' };
  try {
    info = await modelInfo({ name: repo, revision, hubUrl: hubEndpoint(o), accessToken: token, additionalFields: ['sha'], fetch: rec.fetch });
  } catch (e) {
    const err = e as { statusCode?: number; message: string };
    throw hubFailure(repo, revision, { status: err.statusCode, errorCode: rec.last(), message: err.message }, !!token);
  }
  if (!info.sha || !COMMIT.test(info.sha)) throw new HubError(`${repo}@${revision}: the hub answered without a commit sha`, 'other');
  const gated = info.gated ?? false;
  if (gated && !token) throw hubFailure(repo, revision, { status: 401, errorCode: 'GatedRepo', message: 'gated' }, false);
  return { repo, revision, sha: info.sha, gated };
}

/** The cache folder of a model repo (models--org--name). */
export const repoCacheDir = (repo: string, o: HubOptions = {}): string =>
  join(hubCacheDir(o), getRepoFolderName({ type: 'model', name: repo }));

/** The commit a revision pointed to when it was last downloaded (offline fallback), if any. */
export function cachedRevision(repo: string, revision: string, o: HubOptions = {}): string | null {
  if (COMMIT.test(revision)) return existsSync(join(repoCacheDir(repo, o), 'snapshots', revision)) ? revision : null;
  const ref = join(repoCacheDir(repo, o), 'refs', revision);
  return existsSync(ref) ? readFileSync(ref, 'utf8').trim() : null;
}

export interface DownloadReport { snapshot: string; files: number; downloaded: number; resumed: number; bytes: number }

/**
 * Every file of `repo` at commit `sha` into the cache; returns the snapshot dir. `only` filters paths (e.g. skip
 * other weight formats). Safe to rerun: finished files are skipped, partial ones continue.
 */
export async function downloadSnapshot(r: ResolvedRevision, o: HubOptions & { only?: (path: string) => boolean; onFile?: (path: string, bytes: number) => void } = {}): Promise<DownloadReport> {
  const token = hubToken(o);
  const hubUrl = hubEndpoint(o);
  const storage = repoCacheDir(r.repo, o);
  const snapshot = join(storage, 'snapshots', r.sha);
  mkdirSync(snapshot, { recursive: true });
  if (r.revision !== r.sha) {
    mkdirSync(join(storage, 'refs', dirname(r.revision)), { recursive: true });
    writeFileSync(join(storage, 'refs', r.revision), r.sha);
  }
  const report: DownloadReport = { snapshot, files: 0, downloaded: 0, resumed: 0, bytes: 0 };
  const rec = recordingFetch();
  const entries: ListFileEntry[] = [];
  try {
    for await (const e of listFiles({ repo: r.repo, revision: r.sha, recursive: true, expand: true, hubUrl, accessToken: token, fetch: rec.fetch })) {
      if (e.type === 'file' && (o.only?.(e.path) ?? true)) entries.push(e);
    }
  } catch (e) {
    const err = e as { statusCode?: number; message: string };
    throw hubFailure(r.repo, r.revision, { status: err.statusCode, errorCode: rec.last(), message: err.message }, !!token);
  }
  for (const e of entries) {
    if (e.path.split('/').some((p) => p === '..' || p === '') || e.path.startsWith('/')) throw new HubError(`${r.repo}: refusing file path '${e.path}'`, 'other');
    report.files++;
    const pointer = join(snapshot, e.path);
    if (existsSync(pointer)) continue;
    const etag = e.lfs?.oid ?? e.oid;
    if (!etag) throw new HubError(`${r.repo}: the hub lists ${e.path} without a checksum`, 'other');
    const blob = join(storage, 'blobs', etag);
    mkdirSync(dirname(blob), { recursive: true });
    // one writer per blob (two nodes or processes may fetch the same repo): the others wait and find it done
    const fetched = existsSync(blob) ? false : await withLock(`${blob}.lock`, async () => {
      if (existsSync(blob)) return false;
      const partial = `${blob}.incomplete`;
      const have = existsSync(partial) ? statSync(partial).size : 0;
      if (have > 0) report.resumed++;
      try {
        const remote = await downloadFile({ repo: r.repo, path: e.path, revision: r.sha, hubUrl, accessToken: token, xet: false, fetch: rec.fetch });
        if (!remote) throw new HubError(`${r.repo}@${r.sha}: ${e.path} is listed but cannot be downloaded`, 'other');
        if (have < remote.size) {
          const body = remote.slice(have).stream() as unknown as WebReadableStream;
          await pipeline(Readable.fromWeb(body), createWriteStream(partial, { flags: have > 0 ? 'a' : 'w' }));
        }
      } catch (err) {
        if (err instanceof HubError) throw err;
        const x = err as { statusCode?: number; message: string };
        throw hubFailure(r.repo, r.revision, { status: x.statusCode, errorCode: rec.last(), message: `${e.path}: ${x.message}` }, !!token);
      }
      await verify(partial, e, r.repo);
      renameSync(partial, blob);
      return true;
    });
    if (fetched) {
      report.downloaded++;
      report.bytes += e.lfs?.size ?? e.size;
      o.onFile?.(e.path, e.lfs?.size ?? e.size);
    }
    mkdirSync(dirname(pointer), { recursive: true });
    try {
      symlinkSync(relative(dirname(pointer), blob), pointer);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // a concurrent download linked it
    }
  }
  return report;
}

/** A lock file holding its owner's pid; a lock whose process is gone (no /proc entry) is taken over. */
async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let pid = 0;
      try { pid = Number(readFileSync(lock, 'utf8')); } catch { /* released meanwhile */ }
      if (pid > 0 && process.platform === 'linux' && !existsSync(`/proc/${pid}`)) { rmSync(lock, { force: true }); continue; }
      await new Promise((ok) => setTimeout(ok, 100));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** The hub's checksum of a file: sha256 of the content for LFS files, else git's blob sha1. A mismatch deletes the partial file. */
async function verify(path: string, e: ListFileEntry, repo: string): Promise<void> {
  const size = statSync(path).size;
  const want = e.lfs ? { algo: 'sha256', oid: e.lfs.oid, size: e.lfs.size } : { algo: 'sha1', oid: e.oid!, size: e.size };
  const h = createHash(want.algo);
  if (!e.lfs) h.update(`blob ${size}\0`);
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  const got = h.digest('hex');
  if (size !== want.size || got !== want.oid) {
    rmSync(path, { force: true });
    throw new HubError(`${repo}: downloaded ${e.path} does not match the hub's checksum (${e.lfs ? 'sha256' : 'git blob sha1'} ` +
      `${want.oid}, ${want.size} bytes; got ${got}, ${size} bytes); the partial file was removed, run again to re-download`, 'checksum');
  }
}
