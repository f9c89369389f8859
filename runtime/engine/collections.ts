/** Rows grouped by key, in first-seen order. Linear: evaluations and curation runs hold up to millions of rows. */
export function groupBy<T>(rows: Iterable<T>, key: (r: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const r of rows) {
    const k = key(r);
    const g = out.get(k);
    if (g) g.push(r); else out.set(k, [r]);
  }
  return out;
}

/** Appends `v` to `m`'s list under `k` in place (spreading the list per item made a 200k-task slice quadratic). */
export function pushTo<T>(m: Map<string, T[]>, k: string, v: T): void {
  const xs = m.get(k);
  if (xs) xs.push(v); else m.set(k, [v]);
}
