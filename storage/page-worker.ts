import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { LeafInfo, SchemaNode } from './parquet.ts';
import { ChunkWriter, type PageData } from './row-groups.ts';
import { zstd } from './zstd.ts';

/*
 * A table's pages encoded, compressed and written on a worker thread, so that the writer's thread only validates
 * and shreds rows. This file is both sides: the thread's loop (bundled with what it imports by esbuild once per
 * process: a worker cannot load TypeScript by itself) and the writer's handle on it. The handle keeps at most
 * MAX_PAGES pages in flight (a page resolves a wait once the worker has room), gives the page arrays back as the
 * worker returns them, keeps the process alive only while work is outstanding, and ends the thread at finish,
 * on failure, or when the writer that started it is garbage.
 *
 * AGENTFORGE_TABLE_WORKER=0 keeps all encoding on the writer's thread (tests compare the two).
 */

const MARK = 'agentforge.page-worker';
const MAX_PAGES = 6;

interface Init { leaves: LeafInfo[]; roots: SchemaNode[]; path: string; compress: boolean }

type ToWorker = { t: 'page'; page: PageData } | { t: 'ck' | 'restore' | 'commit' | 'finish' };
type FromWorker = { t: 'done'; bufs: ArrayBuffer[] } | { t: 'error'; message: string } | { t: 'finished'; rows: number };

if (!isMainThread && (workerData as Record<string, unknown> | null)?.[MARK]) serve(workerData as Init, parentPort!);

function serve(init: Init, port: NonNullable<typeof parentPort>) {
  const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  const fail = (e: unknown) => post({ t: 'error', message: e instanceof Error ? e.message : String(e) });
  const z = init.compress ? zstd() : null;
  if (init.compress && !z) return fail(new Error('zstd cannot load on the worker thread'));
  const w = new ChunkWriter(init.leaves, init.roots, init.path, z && z.compress, fail);
  port.on('message', async (m: ToWorker) => {
    try {
      if (m.t === 'page') {
        w.page(m.page);
        const bufs = new Set<ArrayBuffer>();
        for (const c of m.page.cols) {
          bufs.add(c.defs.buffer as ArrayBuffer);
          if (c.reps) bufs.add(c.reps.buffer as ArrayBuffer);
          const v = c.vals;
          if ('lens' in v) { bufs.add(v.lens.buffer as ArrayBuffer); bufs.add(v.bytes.buffer as ArrayBuffer); } else bufs.add(v.buffer as ArrayBuffer);
        }
        post({ t: 'done', bufs: [...bufs] }, [...bufs]);
      } else if (m.t === 'ck') w.checkpoint();
      else if (m.t === 'restore') w.restore();
      else if (m.t === 'commit') w.commit();
      else post({ t: 'finished', rows: await w.finish() });
    } catch (e) {
      w.abort();
      fail(e);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The writer's side

let source: string | null | undefined;

/** This file and what it imports as one ESM script, or null where esbuild is missing. */
function workerSource(): string | null {
  if (source !== undefined) return source;
  try {
    const { buildSync } = createRequire(import.meta.url)('esbuild') as typeof import('esbuild');
    const out = buildSync({
      entryPoints: [fileURLToPath(import.meta.url)], bundle: true, format: 'esm', platform: 'node', target: 'node20', write: false,
      logLevel: 'silent', external: ['esbuild', '@toondepauw/node-zstd'],
      // zstd.ts finds its native binding from its own URL: keep this folder's for the bundle (a data: URL).
      define: { 'import.meta.url': JSON.stringify(import.meta.url) },
    });
    source = out.outputFiles[0].text;
  } catch {
    source = null;
  }
  return source;
}

const reaper = new FinalizationRegistry<Worker>((w) => void w.terminate());

export class PageWorker {
  private inflight = 0;
  private room: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  private finished: { resolve: (rows: number) => void; reject: (e: unknown) => void } | null = null;
  private over = false;
  failed: Error | null = null;

  constructor(readonly worker: Worker, private label: string, private giveBack: (ab: ArrayBuffer) => void) {
    worker.unref();
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => { if (!this.over) this.fail(new Error(`exited (code ${code})`)); });
  }

  private onMessage(m: FromWorker) {
    if (m.t === 'done') {
      for (const b of m.bufs) this.giveBack(b);
      if (--this.inflight === 0 && !this.finished) this.worker.unref();
      if (this.room && this.inflight < MAX_PAGES) { this.room.resolve(); this.room = null; }
    } else if (m.t === 'error') this.fail(new Error(m.message));
    else if (this.finished) { this.over = true; this.finished.resolve(m.rows); this.finished = null; }
  }

  private fail(e: unknown) {
    if (this.failed || this.over) return;
    this.failed = new Error(`node ${this.label}: the table's encoder thread failed: ${e instanceof Error ? e.message : String(e)}; nothing was committed`, { cause: e });
    this.room?.reject(this.failed);
    this.finished?.reject(this.failed);
    this.room = this.finished = null;
    this.abort();
  }

  private post(m: ToWorker, transfer: ArrayBuffer[] = []) {
    if (this.failed) throw this.failed;
    this.worker.postMessage(m, transfer);
  }

  /** Sends a page (its arrays move to the worker); resolves once fewer than MAX_PAGES are in flight. */
  page(page: PageData, transfer: ArrayBuffer[]): Promise<void> | void {
    this.post({ t: 'page', page }, transfer);
    if (this.inflight++ === 0) this.worker.ref();
    if (this.inflight < MAX_PAGES) return;
    return new Promise((resolve, reject) => { this.room = { resolve, reject }; });
  }

  checkpoint() { this.post({ t: 'ck' }); }
  restore() { if (!this.failed) this.post({ t: 'restore' }); }
  commit() { this.post({ t: 'commit' }); }

  async finish(): Promise<number> {
    this.post({ t: 'finish' });
    this.worker.ref();
    try {
      return await new Promise<number>((resolve, reject) => { this.finished = { resolve, reject }; });
    } finally {
      this.over = true;
      await this.worker.terminate();
    }
  }

  abort() {
    this.over = true;
    void this.worker.terminate();
  }
}

/** A worker for `owner`'s pages, or null when none can start (no esbuild, AGENTFORGE_TABLE_WORKER=0). */
export function startPageWorker(owner: object, init: Init, label: string, giveBack: (ab: ArrayBuffer) => void): PageWorker | null {
  if (process.env.AGENTFORGE_TABLE_WORKER === '0') return null;
  const code = workerSource();
  if (!code) return null;
  let worker: Worker;
  try {
    worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData: { ...init, [MARK]: true }, execArgv: [] });
  } catch {
    return null;
  }
  reaper.register(owner, worker);
  return new PageWorker(worker, label, giveBack);
}
