/*
 * Unified diffs of small files (the repo world's patches): an LCS line diff per file with 3 lines of context, in
 * the format `git apply` / `patch -p1` read (a/ and b/ prefixes). Files are a few dozen lines, so the quadratic
 * LCS is cheap.
 */

type Op = { t: ' ' | '-' | '+'; line: string };

function lineOps(a: string[], b: string[]): Op[] {
  const n = a.length, m = b.length;
  const L = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const ops: Op[] = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { ops.push({ t: ' ', line: a[i] }); i++; j++; }
    else if (i < n && (j === m || L[i + 1][j] >= L[i][j + 1])) ops.push({ t: '-', line: a[i++] });
    else ops.push({ t: '+', line: b[j++] });
  }
  return ops;
}

const split = (s: string): string[] => (s === '' ? [] : s.replace(/\n$/, '').split('\n'));

/** The diff of one file ('' when unchanged). */
export function fileDiff(path: string, before: string, after: string, context = 3): string {
  if (before === after) return '';
  const ops = lineOps(split(before), split(after));
  const changed = ops.map((o, k) => (o.t !== ' ' ? k : -1)).filter((k) => k >= 0);
  const hunks: Array<[number, number]> = [];
  for (const k of changed) {
    const lo = Math.max(0, k - context), hi = Math.min(ops.length, k + context + 1);
    const last = hunks.at(-1);
    if (last && lo <= last[1]) last[1] = Math.max(last[1], hi);
    else hunks.push([lo, hi]);
  }
  const out = [`--- a/${path}`, `+++ b/${path}`];
  for (const [lo, hi] of hunks) {
    let aStart = 1, bStart = 1;
    for (let k = 0; k < lo; k++) { if (ops[k].t !== '+') aStart++; if (ops[k].t !== '-') bStart++; }
    const body = ops.slice(lo, hi);
    const aLen = body.filter((o) => o.t !== '+').length, bLen = body.filter((o) => o.t !== '-').length;
    out.push(`@@ -${aLen ? aStart : aStart - 1},${aLen} +${bLen ? bStart : bStart - 1},${bLen} @@`, ...body.map((o) => o.t + o.line));
  }
  return `${out.join('\n')}\n`;
}

/** The diff of a set of files (sorted by path). */
export function unifiedDiff(before: Record<string, string>, after: Record<string, string>): string {
  const paths = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return paths.map((p) => fileDiff(p, before[p] ?? '', after[p] ?? '')).join('');
}
