/*
 * `agentforge report` on real runs of small DAGs, opened in headless Chromium: the page loads offline with no
 * console error and no network request, every chart has one mark per row of the SQL shown under it (re-run here
 * against the store), and the screenshot is not blank. A run with a failed node still gets a report that names the
 * failure and the nodes that never ran.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'puppeteer-core';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { collectReport, writeReport } from '../../runtime/report/report.ts';
import { main } from '../../runtime/engine/cli/main.ts';
import smoke from '../../dags/smoke.ts';
import { generateEpisodes } from '../../operators/smoke/generate-episodes.ts';
import { scoreEpisodes } from '../../operators/smoke/score-episodes.ts';
import { numbers, failing, double } from '../engine/fixtures.ts';
import { NO_BROWSER, findBrowser, inspectPage, launch, sqlRowCounts } from './browser.ts';

const chromium = findBrowser();
if (!chromium) console.warn(`skipping the report browser tests: ${NO_BROWSER}`);

const partial = dag('partial', (d) => {
  const episodes = d.node('episodes', generateEpisodes, { n: 50, seed: 3, delayMs: 0 });
  d.node('scored', scoreEpisodes, {}, { episodes });
  const xs = d.node('xs', numbers, { n: 3 });
  const broken = d.node('broken', failing, {}, { xs });
  d.node('after', double, {}, { xs: broken });
});

describe.skipIf(!chromium)('agentforge report in a real browser', () => {
  let browser: Browser;
  let dir: string;
  beforeAll(async () => { browser = await launch(chromium!); dir = mkdtempSync(join(tmpdir(), 'af-report-')); });
  afterAll(async () => { await browser?.close(); rmSync(dir, { recursive: true, force: true }); });

  it('smoke DAG via the CLI: timeline with one bar per execution, offline, no console error, not blank', async () => {
    const storeDir = join(dir, 'smoke-store');
    const r = await runDag(smoke, { storeDir });
    expect(r.ok).toBe(true);
    const out = join(dir, 'smoke.html');
    expect(await main(['report', 'dags/smoke.ts', '--out', out, '--store', storeDir])).toBe(0);
    const html = readFileSync(out, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=["']?http/i);
    const page = await inspectPage(browser, out);
    expect(page.errors).toEqual([]);
    expect(page.requests).toEqual([]);
    expect(page.rendered).toBe('ok');
    const sql = await sqlRowCounts(storeDir, html);
    expect(page.charts.map((c) => c.id)).toContain('timeline');
    for (const c of page.charts) expect({ id: c.id, marks: c.marks, rows: c.rows }).toEqual({ id: c.id, marks: sql.get(c.id), rows: sql.get(c.id) });
    expect(page.charts.find((c) => c.id === 'timeline')!.marks).toBe(4);
    expect(page.colours).toBeGreaterThan(20);
  });

  it('a failed run: the report names the failed node and the nodes without results, and still draws what exists', async () => {
    const storeDir = join(dir, 'partial-store');
    const r = await runDag(partial, { storeDir });
    expect(r.ok).toBe(false);
    const data = await collectReport({ storeDir, dag: partial });
    const run = data.sections.find((s) => s.id === 'run')!;
    expect(run.notes.join('\n')).toMatch(/node broken failed in run .*boom on purpose/);
    expect(run.missing.join('\n')).toMatch(/broken \(stale\).*after \(stale\)/);
    const nodes = run.tables[0].rows;
    expect(nodes.find((n) => n.node === 'after')).toMatchObject({ last_status: 'never run', state: 'stale' });
    expect(nodes.find((n) => n.node === 'scored')).toMatchObject({ last_status: 'committed', state: 'fresh', rows: 50 });
    expect(data.sections.find((s) => s.id === 'sft')!.missing).toEqual(['no train-sft node in this DAG']);

    const out = join(dir, 'partial.html');
    await writeReport({ storeDir, dag: partial, out });
    const page = await inspectPage(browser, out);
    expect(page.errors).toEqual([]);
    const timeline = page.charts.find((c) => c.id === 'timeline')!;
    expect(timeline.marks).toBe((await sqlRowCounts(storeDir, readFileSync(out, 'utf8'))).get('timeline'));
    expect(timeline.marks).toBe(4); // episodes, scored, xs committed; broken failed; after never ran
    expect(readFileSync(out, 'utf8')).toContain('Not in this run');
  });

  it('an empty store: a report that says to run a DAG first', async () => {
    const storeDir = join(dir, 'empty');
    const out = join(dir, 'empty.html');
    await writeReport({ storeDir, out });
    expect(existsSync(out)).toBe(true);
    expect(readFileSync(out, 'utf8')).toContain('run a DAG first');
    const page = await inspectPage(browser, out);
    expect(page.errors).toEqual([]);
    expect(page.charts).toEqual([]);
  });
});
