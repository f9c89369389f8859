/*
 * Unbiased estimators over repeated samples (n samples of a task, c of them successful).
 *  - pass@k (Chen et al. 2021, HumanEval): P(at least one of k drawn samples passes) = 1 − C(n−c, k)/C(n, k),
 *    computed as 1 − Π_{i=n−c+1}^{n} (1 − k/i) for numerical stability; 1 when n − c < k.
 *  - pass^k (Yao et al. 2024, τ-bench): P(all k drawn samples pass) = C(c, k)/C(n, k).
 * Both are averaged over tasks by the callers.
 */
export function passAtK(n: number, c: number, k: number): number {
  check(n, c, k);
  if (n - c < k) return 1;
  let miss = 1;
  for (let i = n - c + 1; i <= n; i++) miss *= 1 - k / i;
  return 1 - miss;
}

export function passHatK(n: number, c: number, k: number): number {
  check(n, c, k);
  if (c < k) return 0;
  let p = 1; // C(c,k)/C(n,k) = Π_{i=0}^{k-1} (c−i)/(n−i)
  for (let i = 0; i < k; i++) p *= (c - i) / (n - i);
  return p;
}

function check(n: number, c: number, k: number): void {
  if (!Number.isInteger(n) || !Number.isInteger(c) || !Number.isInteger(k) || n < 1 || c < 0 || c > n || k < 1 || k > n) {
    throw new Error(`pass@k needs integers with 0 <= c <= n and 1 <= k <= n (got n=${n}, c=${c}, k=${k})`);
  }
}

/** Mean over tasks of an estimator, from per-task (n, c) counts; tasks with fewer than k samples are refused. */
export function meanOverTasks(counts: Array<{ n: number; c: number }>, k: number, f: typeof passAtK): number {
  if (counts.length === 0) return 0;
  return counts.reduce((s, t) => s + f(t.n, t.c, k), 0) / counts.length;
}
