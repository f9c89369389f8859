/*
 * Progress display: a live table of nodes on a TTY (redrawn in place), plain timestamped lines otherwise
 * (CI logs, pipes). Operators only call ctx.progress; they never print.
 */

export type NodeStatus = 'pending' | 'running' | 'cached' | 'committed' | 'failed' | 'blocked' | 'cancelled' | 'skipped';

export interface Reporter {
  nodeStart(id: string): void;
  nodeProgress(id: string, done: number, total: number | undefined, unit: string): void;
  nodeEnd(id: string, status: NodeStatus, detail?: string): void;
  log(id: string, message: string): void;
  close(): void;
}

export const silentReporter: Reporter = { nodeStart() {}, nodeProgress() {}, nodeEnd() {}, log() {}, close() {} };

const fmtSecs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

export class PlainReporter implements Reporter {
  private started = new Map<string, number>();
  private lastPrint = new Map<string, number>();
  constructor(private out: NodeJS.WritableStream = process.stderr) {}
  private line(s: string) { this.out.write(`${s}\n`); }
  nodeStart(id: string) { this.started.set(id, Date.now()); this.line(`[${id}] started`); }
  nodeProgress(id: string, done: number, total: number | undefined, unit: string) {
    const now = Date.now();
    if (now - (this.lastPrint.get(id) ?? 0) < 2000 && done !== total) return;
    this.lastPrint.set(id, now);
    this.line(`[${id}] ${done}${total ? `/${total}` : ''} ${unit} ${fmtSecs(now - (this.started.get(id) ?? now))}`);
  }
  nodeEnd(id: string, status: NodeStatus, detail?: string) {
    const t = this.started.has(id) ? ` ${fmtSecs(Date.now() - this.started.get(id)!)}` : '';
    this.line(`[${id}] ${status}${t}${detail ? ` — ${detail}` : ''}`);
  }
  log(id: string, message: string) { this.line(`[${id}] ${message}`); }
  close() {}
}

interface Row { status: NodeStatus; done: number; total?: number; unit: string; started?: number; ended?: number; detail?: string }

export class LiveReporter implements Reporter {
  private rows = new Map<string, Row>();
  private drawn = 0;
  private timer: NodeJS.Timeout;
  constructor(nodeIds: string[], private out: NodeJS.WriteStream = process.stderr) {
    for (const id of nodeIds) this.rows.set(id, { status: 'pending', done: 0, unit: '' });
    this.timer = setInterval(() => this.draw(), 250);
    this.timer.unref();
  }
  private row(id: string) { let r = this.rows.get(id); if (!r) { r = { status: 'pending', done: 0, unit: '' }; this.rows.set(id, r); } return r; }
  nodeStart(id: string) { Object.assign(this.row(id), { status: 'running', started: Date.now() }); }
  nodeProgress(id: string, done: number, total: number | undefined, unit: string) { Object.assign(this.row(id), { done, total, unit }); }
  nodeEnd(id: string, status: NodeStatus, detail?: string) { Object.assign(this.row(id), { status, detail, ended: Date.now() }); this.draw(); }
  log(id: string, message: string) { this.clear(); this.out.write(`[${id}] ${message}\n`); this.drawn = 0; this.draw(); }
  private clear() { if (this.drawn) this.out.write(`\x1b[${this.drawn}A\x1b[0J`); }
  private draw() {
    this.clear();
    const width = Math.max(...[...this.rows.keys()].map((k) => k.length), 4);
    const lines = [...this.rows].map(([id, r]) => {
      const t = r.started ? fmtSecs((r.ended ?? Date.now()) - r.started) : '';
      const count = r.total ? `${r.done}/${r.total} ${r.unit}` : r.done ? `${r.done} ${r.unit}` : '';
      return `${id.padEnd(width)}  ${r.status.padEnd(9)} ${count.padEnd(24)} ${t}${r.detail ? `  ${r.detail}` : ''}`.slice(0, (this.out.columns ?? 120) - 1);
    });
    this.out.write(lines.join('\n') + '\n');
    this.drawn = lines.length;
  }
  close() { clearInterval(this.timer); this.draw(); }
}
