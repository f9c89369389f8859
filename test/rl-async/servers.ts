/*
 * Rollout servers for tests: `agentforge serve` as a child process (killable by pid), and misbehaving servers on
 * 127.0.0.1 that answer garbage, hang, or claim another policy version (proxying a real server).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { REPO } from '../fixtures/python.ts';

export interface ChildServer { url: string; pid: number; child: ChildProcess; stop(): Promise<void> }

/**
 * The `agentforge serve` process (runtime/agent/serve/main.ts, what the CLI starts) as a child of this one, so its pid
 * is the server's own; resolves once it listens.
 */
export async function spawnServe(dir: string, args: string[] = []): Promise<ChildServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', `${REPO}/runtime/agent/serve/main.ts`, dir, '--port', '0', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err = (err + d).slice(-4000); });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line).url));
    child.once('exit', (code) => reject(new Error(`agentforge serve exited (${code}) before listening:\n${err}`)));
  });
  return {
    url, pid: child.pid!, child,
    stop: () => new Promise<void>((r) => {
      if (child.exitCode !== null || child.signalCode !== null) return r();
      child.once('exit', () => r());
      child.kill('SIGTERM');
    }),
  };
}

export type Misbehaviour = 'garbage' | 'bad_ids' | 'hang' | 'wrong_version' | 'http_500';

/** A server that misbehaves on /v1/completions (and accepts reloads); `upstream` is proxied for wrong_version. */
export async function badServer(kind: Misbehaviour, upstream?: string): Promise<{ url: string; hits: number; close(): Promise<void> }> {
  const state = { hits: 0 };
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (!req.url?.endsWith('/completions')) { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}'); return; }
    state.hits++;
    if (kind === 'hang') return; // never answers
    if (kind === 'http_500') { res.writeHead(500); res.end('boom'); return; }
    if (kind === 'garbage') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('<html>not json'); return; }
    if (kind === 'bad_ids') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ finish_reason: 'stop', token_ids: [10 ** 7], logprobs: { tokens: ['token_id:10000000'], token_logprobs: [-0.1] } }] })); // no policy_version, as vLLM
      return;
    }
    const up = await fetch(`${upstream}/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) });
    const json = (await up.json()) as Record<string, unknown>;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ...json, policy_version: 42 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    get hits() { return state.hits; },
    close: () => { server.closeAllConnections(); return new Promise<void>((r) => server.close(() => r())); },
  };
}

/**
 * An SGLang look-alike: POST /update_weights_from_disk {model_path} is recorded (with the files found there) and
 * answered {success: true}; /v1/completions is proxied to `upstream` with the reply's policy_version removed, as
 * SGLang's carries none.
 */
export async function sglangLike(upstream: string): Promise<{ url: string; reloads: Array<{ model_path: string; files: string[] }>; close(): Promise<void> }> {
  const { readdirSync } = await import('node:fs');
  const reloads: Array<{ model_path: string; files: string[] }> = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    if (req.url === '/update_weights_from_disk') {
      const { model_path } = JSON.parse(body.toString()) as { model_path: string };
      reloads.push({ model_path, files: readdirSync(model_path).sort() });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ success: true, message: 'Succeeded to update model weights.' }));
      return;
    }
    const up = await fetch(`${upstream}${req.url!.replace(/^\/v1/, '')}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const json = (await up.json()) as Record<string, unknown>;
    delete json.policy_version;
    res.writeHead(up.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(json));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, reloads,
    close: () => { server.closeAllConnections(); return new Promise<void>((r) => server.close(() => r())); },
  };
}
