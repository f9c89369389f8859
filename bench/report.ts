/** One JSON line per measurement, the shape every bench prints. */
export interface Measurement {
  bench: string; metric: string; value: number; unit: string;
  baseline: number | null; ratio: number | null; goal: string; pass: boolean | null;
  [extra: string]: unknown;
}

export function emit(m: Measurement) { process.stdout.write(`${JSON.stringify(m)}\n`); }

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function timeIt<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await fn();
  return { ms: performance.now() - t, value };
}
