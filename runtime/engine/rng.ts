/*
 * The one seeded randomness module: a PRNG (mulberry32) and the one way to make a sub-seed, `derive(label, …)`.
 * Same seed → same sequence on every machine (32-bit integer arithmetic only). Not for cryptography.
 *
 * derive(...labels) hashes the labels joined with ':' (FNV-1a), so `derive('noise', task.id, seed)` is the number
 * the hand-written `hash32(\`noise:${task.id}:${seed}\`)` gave before derive existed: every stored seed, split,
 * task and rollout stays what it was. Give each use its own first label; put the run's seed among the labels.
 * It lives in the engine layer because the engine's own tests and every layer above need it.
 */

/** FNV-1a 32-bit hash of a string (also used for deterministic splits). */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A sub-seed (uint32) named by its labels: derive('rl-tasks', seed, step). */
export const derive = (...labels: ReadonlyArray<string | number>): number => hash32(labels.join(':'));

/** A sub-seed that fits a signed 32-bit column (int31). */
export const derive31 = (...labels: ReadonlyArray<string | number>): number => derive(...labels) >>> 1;

/** mulberry32 with helpers for data generation and sampling. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** The generator for a derived sub-seed: Rng.derive('filter', seed). */
  static derive(...labels: ReadonlyArray<string | number>): Rng {
    return new Rng(derive(...labels));
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error('Rng.pick: empty list');
    return xs[Math.floor(this.next() * xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  shuffle<T>(xs: readonly T[]): T[] {
    const a = xs.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
  /** `k` distinct elements. */
  sample<T>(xs: readonly T[], k: number): T[] {
    return this.shuffle(xs).slice(0, k);
  }
}

/** The generator as a bare function (uniform [0, 1)), for code that only needs next(). */
export function mulberry32(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/*
 * Arithmetic sub-seeds older than derive(). They cannot become derive() calls without changing every rollout and
 * sampled token (the numbers are in stored runs), so they are kept, named, here and nowhere else.
 */
/** The engine's sampling seed for assistant turn `turn` of an episode seeded `seed`. */
export const turnSeed = (seed: number, turn: number): number => (seed * 1009 + turn) >>> 0;
/** The per-sequence sampling stream of an engine request seeded `seed`. */
export const samplingStream = (seed: number): (() => number) => mulberry32(seed ^ 0x9e3779b9);
/** Row `i` of a generated table seeded `seed` (the smoke DAG's episodes). */
export const rowSeed = (seed: number, i: number): number => seed * 1_000_003 + i;
