/*
 * Runs one command of the GPU runtime node as a child process: `<venv>/bin/python -m agentforge_node <command>`
 * (PYTHONPATH=runtime/node), one JSON request on stdin, zod-validated JSON-line events back on stdout.
 * A crash, kill or OOM becomes a NodeError carrying the cause and the tail of the child's stderr; an abort
 * signal kills the child (SIGTERM, then SIGKILL after a grace period). With `nproc` > 1 the command runs under
 * torchrun (data parallel), the documented path to more GPUs; the request then travels as a file.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { ensurePythonEnv, GPU_DIR } from './env.ts';
import { NODE_REQUESTS } from './protocol.ts';

export const NodeEvent = z.discriminatedUnion('event', [
  z.object({ event: z.literal('progress'), done: z.number(), total: z.number().nullable(), unit: z.string() }),
  z.object({ event: z.literal('metric'), name: z.string(), value: z.number(), step: z.number().int().nullable() }),
  z.object({ event: z.literal('log'), message: z.string() }),
  z.object({ event: z.literal('result'), value: z.record(z.string(), z.unknown()) }),
  z.object({ event: z.literal('error'), message: z.string(), traceback: z.string().default('') }),
]);
export type NodeEvent = z.infer<typeof NodeEvent>;

export interface RunNodeOptions<R> {
  signal?: AbortSignal;
  onEvent?: (e: NodeEvent) => void;
  /** Working directory of the child (default: runtime/node). */
  cwd?: string;
  /** Interpreter (default: ensurePythonEnv()). */
  python?: string;
  /** Processes for torchrun data parallelism (default 1: plain python). */
  nproc?: number;
  /** Extra environment for the child. */
  env?: Record<string, string>;
  /** Validates the result value (e.g. TrainSftResult). */
  result?: z.ZodType<R>;
  onSpawn?: (pid: number) => void;
}

export class NodeError extends Error {
  constructor(message: string, readonly command: string, readonly stderrTail: string,
    readonly traceback = '', readonly exitCode: number | null = null, readonly signal: string | null = null) {
    super(message);
    this.name = 'NodeError';
  }
}

const STDERR_TAIL = 6000;
const KILL_GRACE_MS = 5000;

export async function runNode<R = Record<string, unknown>>(command: string, request: object,
  opts: RunNodeOptions<R> = {}): Promise<R> {
  const schema = (NODE_REQUESTS as Record<string, z.ZodType>)[command];
  if (schema) {
    const parsed = schema.safeParse(request);
    if (!parsed.success) {
      throw new NodeError(`invalid ${command} request: ${z.prettifyError(parsed.error)}`, command, '');
    }
  }
  opts.signal?.throwIfAborted();
  const python = opts.python ?? (await ensurePythonEnv()).python;
  const nproc = opts.nproc ?? 1;
  let reqDir: string | undefined;
  let args = ['-m', 'agentforge_node', command];
  if (nproc > 1) {
    reqDir = mkdtempSync(join(tmpdir(), 'agentforge-req-'));
    writeFileSync(join(reqDir, 'request.json'), JSON.stringify(request));
    args = ['-m', 'torch.distributed.run', '--standalone', `--nproc_per_node=${nproc}`, '-m', 'agentforge_node',
      command, '--request', join(reqDir, 'request.json')];
  }
  try {
    const value = await spawnNode(python, args, command, nproc > 1 ? null : JSON.stringify(request), opts);
    return opts.result ? parseResult(opts.result, value, command) : (value as R);
  } finally {
    if (reqDir) rmSync(reqDir, { recursive: true, force: true });
  }
}

function parseResult<R>(schema: z.ZodType<R>, value: unknown, command: string): R {
  const r = schema.safeParse(value);
  if (!r.success) throw new NodeError(`${command} returned a malformed result: ${z.prettifyError(r.error)}`, command, '');
  return r.data;
}

function spawnNode(python: string, args: string[], command: string, stdin: string | null,
  opts: RunNodeOptions<unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, {
      cwd: opts.cwd ?? GPU_DIR,
      env: { ...process.env, PYTHONPATH: GPU_DIR, PYTHONUNBUFFERED: '1', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    let result: Record<string, unknown> | undefined;
    let error: Extract<NodeEvent, { event: 'error' }> | undefined;
    let protocolError: string | undefined;
    let aborted = false;
    const fail = (msg: string, code: number | null = null, sig: string | null = null, tb = '') =>
      reject(new NodeError(`${msg}\n--- stderr tail (${command}) ---\n${stderr.slice(-STDERR_TAIL)}`, command,
        stderr.slice(-STDERR_TAIL), tb, code, sig));

    const onAbort = () => {
      aborted = true;
      child.kill('SIGTERM');
      setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), KILL_GRACE_MS).unref();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);

    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d).slice(-4 * STDERR_TAIL); });
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.trim()) return;
      const ev = parseEvent(line);
      if (typeof ev === 'string') { protocolError ??= ev; return; }
      if (ev.event === 'result') result = ev.value;
      else if (ev.event === 'error') error = ev;
      try { opts.onEvent?.(ev); } catch (e) { protocolError ??= `onEvent handler threw: ${(e as Error).message}`; }
    });
    child.on('error', (e) => fail(`could not start ${python}: ${e.message}`));
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (aborted) return reject(opts.signal?.reason ?? new Error('aborted'));
      if (error) return fail(`node ${command} failed: ${error.message}`, code, sig, error.traceback);
      if (protocolError) return fail(`node ${command} broke the protocol: ${protocolError}`, code, sig);
      if (code === 0 && result) return resolve(result);
      const why = sig ? `was killed by ${sig}${sig === 'SIGKILL' ? ' (out of memory? the kernel OOM killer sends SIGKILL)' : ''}`
        : code === 0 ? 'exited 0 without a result event' : `exited with code ${code} without an error event`;
      fail(`node ${command} ${why}`, code, sig);
    });
    child.stdin.on('error', () => {}); // a child that dies early closes stdin; its exit code tells the story
    child.stdin.end(stdin ?? '');
  });
}

function parseEvent(line: string): NodeEvent | string {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return `stdout line is not JSON: ${line.slice(0, 200)}`;
  }
  const ev = NodeEvent.safeParse(raw);
  return ev.success ? ev.data : `bad event ${line.slice(0, 200)}: ${z.prettifyError(ev.error)}`;
}
