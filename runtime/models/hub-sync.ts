/*
 * resolveHubRevision for a synchronous caller: an operator's `fingerprint` (keys are computed synchronously, before
 * anything runs) must know the commit a branch points to, so a moved branch reruns the node and a repo that does not
 * exist fails the run before any node starts. A worker thread asks the hub through @huggingface/hub while this
 * thread waits on a shared flag (Atomics.wait), bounded by a timeout.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { HubError, hubEndpoint, hubFailure, hubToken, REPO_ID, type HubOptions, type ResolvedRevision } from './hub.ts';

const WORKER = `
const { workerData } = require('node:worker_threads');
const { modelInfo } = require(workerData.hub);
const flag = new Int32Array(workerData.shared, 0, 1);
const out = new Uint8Array(workerData.shared, 8);
let errorCode = null;
const recording = async (input, init) => {
  const res = await fetch(input, init);
  if (!res.ok) errorCode = res.headers.get('x-error-code');
  return res;
};
modelInfo({ name: workerData.repo, revision: workerData.revision, hubUrl: workerData.hubUrl, accessToken: workerData.token,
  additionalFields: ['sha'], fetch: recording })
  .then((info) => ({ ok: true, sha: info.sha, gated: info.gated ?? false }),
        (e) => ({ ok: false, status: e.statusCode, errorCode, message: String(e.message) }))
  .then((r) => {
    const bytes = Buffer.from(JSON.stringify(r)).subarray(0, out.length - 4);
    new DataView(out.buffer, 8).setUint32(0, bytes.length);
    out.set(bytes, 4);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  });
`;

type Answer = { ok: true; sha: string; gated: false | 'auto' | 'manual' } | { ok: false; status?: number; errorCode: string | null; message: string };

/** Like resolveHubRevision; a hub that does not answer within `timeoutMs` is a HubError with code 'other'. */
export function resolveHubRevisionSync(repo: string, revision: string, o: HubOptions & { timeoutMs?: number } = {}): ResolvedRevision {
  if (!REPO_ID.test(repo)) throw new HubError(`'${repo}' is not a hub repo id; write it as org/name`, 'repo_not_found');
  const token = hubToken(o);
  const shared = new SharedArrayBuffer(8 + 65536);
  const flag = new Int32Array(shared, 0, 1);
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: { shared, repo, revision, hubUrl: hubEndpoint(o), token, hub: createRequire(import.meta.url).resolve('@huggingface/hub') },
  });
  try {
    const state = Atomics.wait(flag, 0, 0, o.timeoutMs ?? 30_000);
    if (state === 'timed-out') throw new HubError(`${repo}@${revision}: the hub at ${hubEndpoint(o)} did not answer within ${(o.timeoutMs ?? 30_000) / 1000} s`, 'other');
    const view = new DataView(shared, 8);
    const len = view.getUint32(0);
    const a = JSON.parse(Buffer.from(new Uint8Array(shared, 12, len)).toString('utf8')) as Answer;
    if (!a.ok) throw hubFailure(repo, revision, a, !!token);
    if (a.gated && !token) throw hubFailure(repo, revision, { status: 401, errorCode: 'GatedRepo', message: 'gated' }, false);
    return { repo, revision, sha: a.sha, gated: a.gated };
  } finally {
    void worker.terminate();
  }
}
