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
