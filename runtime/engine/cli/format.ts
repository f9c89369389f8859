/** Plain-text table and CSV rendering for CLI output. */
const cell = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

export function printTable(columns: string[], rows: Record<string, unknown>[], out: NodeJS.WritableStream = process.stdout) {
  const cells = rows.map((r) => columns.map((c) => cell(r[c]).replace(/\s+/g, ' ').slice(0, 80)));
  // a reduce, not Math.max(...all): spreading 100k+ rows overflows the call stack
  const widths = columns.map((c, i) => cells.reduce((w, r) => Math.max(w, r[i].length), c.length));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  out.write(`${line(columns)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const r of cells) out.write(`${line(r)}\n`);
  out.write(`(${rows.length} row${rows.length === 1 ? '' : 's'})\n`);
}

export function toCsv(columns: string[], rows: Record<string, unknown>[]): string {
  const esc = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return [columns.map(esc).join(','), ...rows.map((r) => columns.map((c) => esc(cell(r[c]))).join(','))].join('\n') + '\n';
}
