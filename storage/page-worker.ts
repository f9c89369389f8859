import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { LEVEL } from './zstd.ts';

/*
 * The page worker: one thread per process that turns staged pages (storage/pages.mjs) into zstd page bodies, so
 * levels, packing, assembly and compression run on the second core while the main thread keeps shredding. Started
 * lazily (by the first table that outgrows a couple of pages), unref'd while it has nothing to do, so it never
 * keeps a process alive. Should it die, every page it owed fails with the reason, and the next table starts anew.
 *
 * Pages are staged in a few shared slabs, reused round-robin: a fresh buffer per page would be external memory
 * that only a GC gives back (and a long write() call never yields for the worker to hand buffers back). The worker
 * frees a slab once it has read it; a main thread that finds the next slab still busy waits for it, which also
 * bounds how far shredding runs ahead.
 */

export interface Encoded { out: Buffer; ends: number[]; raws: number[] }

/** AGENTFORGE_PAGE_WORKER: 1 = every page of every table (tests), 0 = never; else after a table's first pages. */
export function workerMode(): 'always' | 'never' | 'auto' {
  const v = process.env.AGENTFORGE_PAGE_WORKER;
  return v === '1' ? 'always' : v === '0' || (v === undefined && availableParallelism() < 2) ? 'never' : 'auto';
}

let shared: PageWorker | null = null;
export const pageWorker = () => (shared ??= new PageWorker());

const SLABS = 4, SLAB_BYTES = 8 << 20;

class PageWorker {
  private w: Worker;
  private next = 0;
  private waiting = new Map<number, { resolve: (e: Encoded) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;
  /** 1 while a slab holds a page the worker has not read yet. */
  private busy = new Int32Array(new SharedArrayBuffer(4 * SLABS));
  private slabs: Buffer[] = [];
  private turn = 0;
  /** Set when a wait for a slab timed out: from then on pages are staged in private buffers. */
  private stalled = false;

  constructor() {
    // A plain-JS entry and no execArgv: no TypeScript loader is needed, or loaded, in the thread.
    this.w = new Worker(new URL('./pages.mjs', import.meta.url), { workerData: { agentforgePages: true, level: LEVEL, busy: this.busy.buffer }, execArgv: [] });
    this.w.unref();
    this.w.on('message', (m: { id: number; error?: string; out: ArrayBuffer; ends: number[]; raws: number[] }) => {
      const p = this.waiting.get(m.id);
      if (!p) return; // failed already: the thread died with its answer on the way
      this.waiting.delete(m.id);
      if (!this.waiting.size) this.w.unref();
      if (m.error !== undefined) p.reject(new Error(`table page worker: ${m.error}`));
      else p.resolve({ out: Buffer.from(m.out), ends: m.ends, raws: m.raws });
    });
    this.w.on('error', (e) => this.fail(new Error(`table page worker failed: ${e.message}`)));
    this.w.on('messageerror', (e) => this.fail(new Error(`table page worker: a message could not be read: ${e.message}`)));
    this.w.on('exit', (code) => this.fail(new Error(`table page worker exited (code ${code})`)));
  }

  private fail(e: Error) {
    this.dead ??= e;
    if (shared === this) shared = null;
    for (const p of this.waiting.values()) p.reject(this.dead);
    this.waiting.clear();
    void this.w.terminate();
  }

  /** Memory to stage a page in: the next slab (-1: a private buffer, when the slabs are stuck). */
  staging(): { buf: Buffer; slab: number } {
    const k = this.turn++ % SLABS;
    if (!this.stalled && Atomics.load(this.busy, k) === 1 && Atomics.wait(this.busy, k, 1, 5000) === 'timed-out') this.stalled = true;
    if (this.stalled || this.dead) return { buf: Buffer.from(new ArrayBuffer(SLAB_BYTES)), slab: -1 };
    this.busy[k] = 1;
    this.slabs[k] ??= Buffer.from(new SharedArrayBuffer(SLAB_BYTES));
    return { buf: this.slabs[k], slab: k };
  }

  /** Encodes a page staged in buf[0, len) (a slab, or a buffer that is the worker's from here on). */
  encode(slab: number, buf: Buffer, len: number, spec: number[], zstd: boolean): Promise<Encoded> {
    if (slab >= 0 && buf !== this.slabs[slab]) { Atomics.store(this.busy, slab, 0); slab = -1; } // outgrew it
    if (this.dead) return Promise.reject(this.dead);
    const id = this.next++;
    const done = new Promise<Encoded>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    if (this.waiting.size === 1) this.w.ref();
    const job = buf.buffer;
    this.w.postMessage({ id, slab, job, len, spec, zstd }, slab < 0 ? [job as ArrayBuffer] : []);
    return done;
  }

  /** For tests: ends the thread as a crash would. */
  kill() { return this.w.terminate(); }
}
