/*
 * A long-lived RL trainer child: `python -m agentforge_node.rl_session`, so torch and the model load once per run
 * instead of once per step. Requests and results are typed in ./protocol.ts (RlStepRequest, RlSample, RlStepResult).
 *
 *   const s = await RlSession.start({ signal, onEvent });                 // spawns the child (PYTHONPATH=runtime/node)
 *   const st = await s.state({ model_dir, checkpoint_dir, export_dir });  // load / resume; st.step = trainer step
 *   for (let v = st.step + 1; v <= steps; v++) {
 *     // rollouts with the engine on export_dir (policy v - 1) -> advantages (runtime/rl/advantages.ts) -> then:
 *     const r = await s.step({ model_dir, checkpoint_dir, step: v, samples, export_dir, lr: 1e-5 });
 *     // r.metrics (loss, clip_frac, kl, entropy, mismatch_kl, tis_mean, ...), r.export -> engine.reload(dir, v)
 *   }
 *   await s.close();
 *
 * Protocol: one JSON request per stdin line; the child answers each with progress/metric/log events and one
 * `{"event":"result"}` line (or `{"event":"error"}`, after which it exits: the trainer state may be torn, and a
 * new session resumes from the last checkpoint). Calls are queued, one request in flight at a time.
 * Resume rule (Python side): `step` <= the trainer's step is answered `skipped: true` without training, so a
 * replayed step is never counted twice; a gap (`step` > trainer step + 1) is an error naming the missing steps.
 * After a kill the trainer is back at its last checkpoint; `state()` says where, and the loop re-runs the steps
 * after it from the rollout table (same rows -> same weights).
 * An abort signal kills the child (SIGTERM, then SIGKILL); every pending call rejects with the abort reason.
 * A crash rejects pending and later calls with a NodeError carrying the stderr tail.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { NodeError, NodeEvent } from './client.ts';
import { ensurePythonEnv, GPU_DIR } from './env.ts';
import { RlStepRequest, RlStepResult } from './protocol.ts';

export interface RlSessionOptions {
  signal?: AbortSignal;
  /** Every event of every request (metrics carry the step), e.g. forwardEvents(ctx) from ./bridge.ts. */
  onEvent?: (e: NodeEvent) => void;
  /** Interpreter (default: ensurePythonEnv()). */
  python?: string;
  env?: Record<string, string>;
  cwd?: string;
  /** > 1: the trainer runs under torchrun on this many processes (requests' `parallel`: 'fsdp' or 'ddp'); rank 0
   * reads the requests and broadcasts them (agentforge_node/rl_session.py). */
  nproc?: number;
}

interface Pending {
  resolve: (r: RlStepResult) => void;
  reject: (e: unknown) => void;
}

const COMMAND = 'rl-session';
const STDERR_TAIL = 6000;
const KILL_GRACE_MS = 5000;

export class RlSession {
  private stderr = '';
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private dead: Error | undefined;
  private closed = false;
  private readonly exited: Promise<{ code: number | null; sig: string | null }>;

  private constructor(private readonly child: ChildProcessWithoutNullStreams, private readonly opts: RlSessionOptions) {
    child.stderr.on('data', (d: Buffer) => { this.stderr = (this.stderr + d).slice(-4 * STDERR_TAIL); });
    createInterface({ input: child.stdout }).on('line', (line) => this.onLine(line));
    child.stdin.on('error', () => {}); // a dead child closes its stdin; the exit handler reports why
    this.exited = new Promise((res) => child.on('close', (code, sig) => { this.onExit(code, sig); res({ code, sig }); }));
    child.on('error', (e) => this.die(this.error(`could not start the rl session: ${e.message}`)));
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  static async start(opts: RlSessionOptions = {}): Promise<RlSession> {
    opts.signal?.throwIfAborted();
    const python = opts.python ?? (await ensurePythonEnv()).python;
    const nproc = opts.nproc ?? 1;
    const args = nproc > 1
      ? ['-m', 'torch.distributed.run', '--standalone', `--nproc_per_node=${nproc}`, '-m', 'agentforge_node.rl_session']
      : ['-m', 'agentforge_node.rl_session'];
    const child = spawn(python, args, {
      cwd: opts.cwd ?? GPU_DIR,
      env: { ...process.env, PYTHONPATH: GPU_DIR, PYTHONUNBUFFERED: '1', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new RlSession(child, opts);
  }

  get pid(): number | undefined { return this.child.pid; }

  /** Loads (or resumes) the trainer without training; exports when export_dir is given. */
  state(req: Omit<RlStepRequest, 'op' | 'step' | 'rollouts' | 'samples'>): Promise<RlStepResult> {
    return this.request({ ...req, op: 'state' });
  }

  /** One optimisation step on the given rollouts. */
  step(req: Omit<RlStepRequest, 'op'> & { step: number }): Promise<RlStepResult> {
    return this.request({ ...req, op: 'step' });
  }

  request(req: RlStepRequest): Promise<RlStepResult> {
    const parsed = RlStepRequest.safeParse(req);
    if (!parsed.success) return Promise.reject(new NodeError(`invalid rl step request: ${z.prettifyError(parsed.error)}`, COMMAND, ''));
    const run = () => new Promise<RlStepResult>((resolve, reject) => {
      if (this.dead) return reject(this.dead);
      if (this.closed) return reject(new NodeError('rl session is closed', COMMAND, ''));
      this.pending = { resolve, reject };
      this.child.stdin.write(`${JSON.stringify(parsed.data)}\n`);
    });
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  /** Closes stdin after the queued requests; resolves when the child exited cleanly. */
  async close(): Promise<void> {
    await this.queue;
    if (this.closed) return;
    this.closed = true;
    this.child.stdin.end();
    const { code, sig } = await this.exited;
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    if (this.dead && !(this.dead instanceof NodeError && this.dead.exitCode === 0)) throw this.dead;
    if (code !== 0) throw this.error(`rl session exited with ${sig ?? code} on close`, code, sig);
  }

  /** Kills the child now (SIGKILL); pending calls reject. */
  kill(): void { this.child.kill('SIGKILL'); }

  private onAbort = () => {
    this.die(this.opts.signal?.reason ?? new Error('aborted'));
    this.child.kill('SIGTERM');
    setTimeout(() => this.child.exitCode === null && this.child.signalCode === null && this.child.kill('SIGKILL'),
      KILL_GRACE_MS).unref();
  };

  private onLine(line: string): void {
    if (!line.trim()) return;
    let ev: NodeEvent;
    try {
      ev = NodeEvent.parse(JSON.parse(line));
    } catch (e) {
      this.die(this.error(`rl session broke the protocol: ${line.slice(0, 200)} (${(e as Error).message.slice(0, 200)})`));
      this.child.kill('SIGKILL');
      return;
    }
    try { this.opts.onEvent?.(ev); } catch { /* a listener's bug must not wedge the trainer */ }
    const p = this.pending;
    if (ev.event === 'result') {
      this.pending = undefined;
      const r = RlStepResult.safeParse(ev.value);
      if (r.success) p?.resolve(r.data);
      else p?.reject(this.error(`rl session returned a malformed result: ${z.prettifyError(r.error)}`));
    } else if (ev.event === 'error') {
      this.pending = undefined;
      const err = this.error(`rl session failed: ${ev.message}`, null, null, ev.traceback);
      this.dead = err;
      p?.reject(err);
    }
  }

  private onExit(code: number | null, sig: string | null): void {
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    if (this.closed && code === 0) { this.dead ??= new NodeError('rl session is closed', COMMAND, '', '', 0); return; }
    const why = sig ? `was killed by ${sig}${sig === 'SIGKILL' ? ' (out of memory? the kernel OOM killer sends SIGKILL)' : ''}`
      : `exited with code ${code}`;
    this.die(this.dead ?? this.error(`rl session ${why}`, code, sig));
  }

  private die(err: unknown): void {
    this.dead ??= err instanceof Error ? err : new Error(String(err));
    const p = this.pending;
    this.pending = undefined;
    p?.reject(this.dead);
  }

  private error(msg: string, code: number | null = null, sig: string | null = null, tb = ''): NodeError {
    const tail = this.stderr.slice(-STDERR_TAIL);
    return new NodeError(`${msg}\n--- stderr tail (${COMMAND}) ---\n${tail}`, COMMAND, tail, tb, code, sig);
  }
}
