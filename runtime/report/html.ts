/*
 * One self-contained HTML file: styles, Observable Plot (bundled from node_modules with esbuild, so the page opens
 * offline with no CDN), the report's rows as JSON and the script that draws them.
 *
 * Why Observable Plot: it is maintained by Observable (the d3 authors), ISC-licensed, and draws SVG with one element
 * per mark, so a test can count marks against the SQL behind a chart; faceting gives model × world grids without
 * per-chart code. uPlot draws to a canvas (nothing to count); Vega-Lite needs ~3× the bytes.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Chart, ReportData, Row, Section, TableView } from './model.ts';
import { CLIENT_JS } from './client.ts';

let plotBundle: Promise<string> | undefined;

/** Plot and d3 as one minified IIFE that sets window.Plot (~380 KB); built once per process. */
export function plotScript(): Promise<string> {
  plotBundle ??= (async () => {
    const req = createRequire(import.meta.url);
    let pkgDir = dirname(req.resolve('@observablehq/plot'));
    while (!existsSync(join(pkgDir, 'package.json'))) pkgDir = dirname(pkgDir);
    const version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version;
    const esbuild = await import('esbuild');
    const r = await esbuild.build({
      stdin: { contents: `import * as Plot from '@observablehq/plot'; window.Plot = Plot;`, resolveDir: pkgDir },
      bundle: true, format: 'iife', minify: true, write: false, platform: 'browser', legalComments: 'none', logLevel: 'silent',
    });
    return `/* Observable Plot ${version} and d3 (ISC licence, https://github.com/observablehq/plot) */\n${r.outputFiles[0].text}`;
  })();
  return plotBundle;
}

const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
/** JSON inside a <script> element: never let a value close the element. */
const scriptJson = (x: unknown) => JSON.stringify(x).replace(/</g, '\\u003c');

function cell(v: unknown): string {
  if (v === null || v === undefined) return '<td class="na">–</td>';
  if (typeof v === 'number') return `<td class="num">${Number.isInteger(v) ? v : v.toFixed(4)}</td>`;
  return `<td>${esc(typeof v === 'object' ? JSON.stringify(v) : v)}</td>`;
}

function tableHtml(t: TableView): string {
  const head = t.columns.map((c) => `<th>${esc(c)}</th>`).join('');
  const body = t.rows.map((r: Row) => `<tr>${t.columns.map((c) => cell(r[c])).join('')}</tr>`).join('\n');
  const sql = t.sql ? `<details><summary>SQL</summary><pre>${esc(t.sql)}</pre></details>` : '';
  return `<div class="table"><h3>${esc(t.title)}</h3><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>${sql}</div>`;
}

function chartHtml(c: Chart, index: number): string {
  const mark = c.kind === 'line' ? 'dot' : 'tick';
  return `<figure class="chart" id="${esc(c.id)}" data-chart="${index}" data-kind="${c.kind}" data-mark="${mark}" data-rows="${c.rows.length}">
<figcaption>${esc(c.title)} <span class="rows">(${c.rows.length} rows)</span></figcaption><div class="plot"></div>
<details><summary>SQL</summary><pre class="sql">${esc(c.sql)}</pre></details></figure>`;
}

function sectionHtml(s: Section, charts: Chart[]): string {
  const notes = s.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('');
  const missing = s.missing.length ? `<div class="missing"><strong>Not in this run:</strong><ul>${s.missing.map((m) => `<li>${esc(m)}</li>`).join('')}</ul></div>` : '';
  const figs = s.charts.map((c) => { charts.push(c); return chartHtml(c, charts.length - 1); }).join('\n');
  return `<section id="${esc(s.id)}"><h2>${esc(s.title)}</h2>${notes}${missing}${figs}${s.tables.map(tableHtml).join('\n')}</section>`;
}

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}nav a{margin-right:1em}
figure.chart{margin:1.2em 0;padding:.5em;border:1px solid #eee;border-radius:6px}figcaption{font-weight:600;margin-bottom:.4em}
.rows{color:#888;font-weight:normal}table{border-collapse:collapse;margin:.4em 0;font-size:13px}td,th{border:1px solid #ddd;padding:2px 6px}
th{background:#f6f6f6}.num{text-align:right;font-variant-numeric:tabular-nums}.na{color:#aaa}.missing{background:#fff6e0;border-left:4px solid #e0a800;padding:.3em 1em;margin:.6em 0}
.note{background:#fdecea;border-left:4px solid #d9534f;padding:.3em 1em}pre{white-space:pre-wrap;font-size:12px;background:#f8f8f8;padding:.5em}
.meta{color:#666}details summary{cursor:pointer;color:#666;font-size:12px}`;

export async function renderHtml(r: ReportData): Promise<string> {
  const charts: Chart[] = [];
  const sections = r.sections.map((s) => sectionHtml(s, charts)).join('\n');
  const nav = r.sections.map((s) => `<a href="#${esc(s.id)}">${esc(s.title)}</a>`).join('');
  const run = r.run ? `run ${esc(r.run.run_id)} · ${esc(r.run.status)} · started ${esc(r.run.started_at)} · ${esc(r.run.seconds ?? '?')} s` : 'no run recorded';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(r.title)}</title><style>${CSS}</style></head>
<body data-rendered="pending"><h1>${esc(r.title)}</h1>
<p class="meta">${run}<br>store ${esc(r.storeDir)} · generated ${esc(r.generatedAt)} by <code>agentforge report</code></p>
<nav>${nav}</nav>
${sections}
<script type="application/json" id="report-data">${scriptJson({ charts })}</script>
<script>${(await plotScript()).replace(/<\/script/gi, '<\\/script')}</script>
<script>${CLIENT_JS}</script>
</body></html>
`;
}
