/*
 * The trajectory table of an RL run, step by step: the rollouts of step s are written once, atomically, to
 * `<dir>/step-<s>.json` before the trainer sees them. After a kill, steps whose file exists are replayed from it
 * (never generated again) and the trainer skips the steps it already applied — so no step is lost or counted twice.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Rollout } from '../../schemas/rollout.ts';

export interface StepRecord {
  step: number;
  /** Groups the trainer uses. */
  train: Rollout[];
  /** Groups set aside by dynamic sampling (kept for metrics and the table). */
  dropped: Rollout[];
  droppedSolved: number;
  droppedFailed: number;
  /** Wall-clock seconds of the rollout phase and its parts (summed over rollouts for generate/env). */
  times: Record<string, number>;
  /**
   * Rollout id → the policy version of each of its turns (several for a partial rollout, one that crossed a weight
   * reload). Absent in records written before asynchronous RL.
   */
  versions?: Record<string, number[]>;
}

/** Where a train-rl output keeps its run's step files (read back by the rl-rollouts operator). */
export const RUN_STEPS_DIR = 'steps';

export const stepName = (step: number): string => `step-${String(step).padStart(6, '0')}`;

export class StepStore {
  constructor(readonly dir: string) { mkdirSync(dir, { recursive: true }); }

  has(step: number): boolean { return existsSync(this.path(step)); }

  read(step: number): StepRecord {
    const raw = JSON.parse(readFileSync(this.path(step), 'utf8')) as StepRecord;
    const where = this.path(step);
    const parse = (rows: unknown[], what: string) => rows.map((r, i) => {
      const p = Rollout.safeParse(r);
      if (!p.success) throw new Error(`${where}: ${what}[${i}] is not a rollout: ${p.error.issues[0].path.join('.')}: ${p.error.issues[0].message}`);
      return p.data;
    });
    return { ...raw, train: parse(raw.train, 'train'), dropped: parse(raw.dropped, 'dropped') };
  }

  write(rec: StepRecord): void {
    const final = this.path(rec.step);
    if (existsSync(final)) throw new Error(`${final} already exists: step ${rec.step} was generated before`);
    const tmp = `${final}.tmp`;
    const fd = openSync(tmp, 'w');
    try { writeSync(fd, JSON.stringify(rec)); fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(tmp, final);
  }

  steps(): number[] {
    return readdirSync(this.dir).filter((f) => /^step-\d+\.json$/.test(f)).map((f) => Number(f.slice(5, -5))).sort((a, b) => a - b);
  }

  private path(step: number): string { return join(this.dir, `${stepName(step)}.json`); }
}
