/*
 * The hub look-alike in a worker thread. resolve-model resolves a revision while keys are computed, synchronously
 * (the calling thread waits on Atomics.wait), so a server on the test's own event loop could never answer; in a
 * worker it can. RemoteHub forwards the test's calls to the HubServer there.
 */
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { HubServer, type RequestLog } from './hub-server.ts';

type Call = { id: number; method: string; args: unknown[] };

if (!isMainThread && parentPort) {
  const port = parentPort;
  const server = await HubServer.start();
  const methods: Record<string, (...a: never[]) => unknown> = {
    url: () => server.url,
    addRepo: (name: string, files: Record<string, Uint8Array>, o: object) =>
      server.addRepo(name, Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)])), o),
    ref: (key: string, branch: string) => server.repos.get(key)?.refs.get(branch),
    log: () => server.log,
    files: (name: string, revision: string, type: 'model' | 'dataset') => {
      const f = server.files(name, revision, type);
      return f ? Object.fromEntries(f) : null;
    },
    corrupt: (paths: string[]) => { server.corrupt = new Set(paths); },
    cutAfter: (path: string, n: number) => { server.cutAfter.set(path, n); },
    close: () => server.close(),
  };
  port.on('message', (c: Call) => {
    Promise.resolve()
      .then(() => methods[c.method](...(c.args as never[])))
      .then((value) => port.postMessage({ id: c.id, value }), (e: Error) => port.postMessage({ id: c.id, error: e.message }));
  });
  port.postMessage({ ready: true });
}

export class RemoteHub {
  private next = 0;
  private pending = new Map<number, { ok: (v: unknown) => void; err: (e: Error) => void }>();
  url = '';
  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: { id?: number; value?: unknown; error?: string }) => {
      if (m.id === undefined) return;
      const p = this.pending.get(m.id)!;
      this.pending.delete(m.id);
      if (m.error) p.err(new Error(m.error));
      else p.ok(m.value);
    });
  }

  static async start(): Promise<RemoteHub> {
    // a worker does not inherit the test runner's TS loader: register tsx's, then load this module
    const code = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const worker = new Worker(code, { eval: true });
    await new Promise<void>((ok, err) => {
      worker.once('error', err);
      worker.on('message', (m: { ready?: boolean }) => { if (m.ready) ok(); });
    });
    const hub = new RemoteHub(worker);
    hub.url = (await hub.call('url')) as string;
    return hub;
  }

  private call(method: string, ...args: unknown[]): Promise<unknown> {
    const id = this.next++;
    return new Promise((ok, err) => {
      this.pending.set(id, { ok, err });
      this.worker.postMessage({ id, method, args });
    });
  }

  addRepo(name: string, files: Record<string, Buffer | string>, o: { type?: 'model' | 'dataset'; gated?: boolean; branch?: string } = {}): Promise<string> {
    return this.call('addRepo', name, Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v)])), o) as Promise<string>;
  }
  ref(repo: string, branch = 'main', type: 'model' | 'dataset' = 'model'): Promise<string | undefined> {
    return this.call('ref', `${type}:${repo}`, branch) as Promise<string | undefined>;
  }
  log(): Promise<RequestLog[]> { return this.call('log') as Promise<RequestLog[]>; }
  async files(name: string, revision = 'main', type: 'model' | 'dataset' = 'model'): Promise<Record<string, Buffer> | null> {
    const f = (await this.call('files', name, revision, type)) as Record<string, Uint8Array> | null;
    return f && Object.fromEntries(Object.entries(f).map(([k, v]) => [k, Buffer.from(v)]));
  }
  corrupt(paths: string[]): Promise<unknown> { return this.call('corrupt', paths); }
  cutAfter(path: string, n: number): Promise<unknown> { return this.call('cutAfter', path, n); }
  async close(): Promise<void> {
    await this.call('close');
    await this.worker.terminate();
  }
}
