/*
 * A real browser for the report tests: the system Chromium (Debian's `chromium`, installed by .ci/run) driven by
 * puppeteer-core. No browser download: puppeteer-core only talks DevTools to the binary it is given.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'puppeteer-core';
import { openSqlSession, runReadOnly } from '../../storage/sql.ts';

const CANDIDATES = [process.env.CHROME_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

export function findBrowser(): string | null {
  return CANDIDATES.find((p): p is string => !!p && existsSync(p)) ?? null;
}

export const NO_BROWSER = 'no Chromium found (looked at $CHROME_PATH, /usr/bin/chromium, chromium-browser, google-chrome): '
  + 'install it with `apt-get install -y chromium` (.ci/run does) to run the report browser test';

export async function launch(executablePath: string): Promise<Browser> {
  const puppeteer = await import('puppeteer-core');
  // --no-sandbox: CI runs as root, where Chromium refuses its own sandbox; the page is a local file we wrote.
  return puppeteer.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

export interface PageResult {
  errors: string[];
  requests: string[];
  rendered: string;
  charts: Array<{ id: string; rows: number; marks: number; mark: string }>;
  /** Distinct colours over a grid of sampled pixels of the screenshot. */
  colours: number;
  screenshot: Uint8Array;
}

/** Opens an HTML file offline and reads back what the test checks. */
export async function inspectPage(browser: Browser, file: string): Promise<PageResult> {
  const page = await browser.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.setRequestInterception(true);
  page.on('request', (r) => { const local = /^(file|data|blob|about):/.test(r.url()); if (!local) requests.push(r.url()); void (local ? r.continue() : r.abort()); });
  await page.setViewport({ width: 1100, height: 900 });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  await page.waitForFunction(() => document.body.dataset.rendered !== 'pending', { timeout: 30_000 });
  const rendered = await page.evaluate(() => document.body.dataset.rendered ?? '');
  const charts = await page.evaluate(() => [...document.querySelectorAll<HTMLElement>('figure.chart')].map((f) => ({
    id: f.id, rows: Number(f.dataset.rows), mark: f.dataset.mark ?? '',
    marks: f.querySelectorAll(`g[aria-label="${f.dataset.mark}"] ${f.dataset.mark === 'dot' ? 'circle' : 'line'}`).length,
  })));
  const screenshot = await page.screenshot({ fullPage: true, type: 'png' });
  const colours = await page.evaluate(async (b64: string) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width; c.height = img.height;
    const g = c.getContext('2d')!;
    g.drawImage(img, 0, 0);
    const seen = new Set<string>();
    for (let y = 0; y < img.height; y += 7) for (let x = 0; x < img.width; x += 7) seen.add(g.getImageData(x, y, 1, 1).data.join(','));
    return seen.size;
  }, Buffer.from(screenshot).toString('base64'));
  await page.close();
  return { errors, requests, rendered, charts, colours, screenshot };
}

/** Every chart's SQL, run again on the store: the row counts the page must show. */
export async function sqlRowCounts(storeDir: string, html: string): Promise<Map<string, number>> {
  const data = JSON.parse(/<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)![1]) as { charts: { id: string; sql: string }[] };
  const session = await openSqlSession(storeDir);
  try {
    const out = new Map<string, number>();
    for (const c of data.charts) if (!c.sql.startsWith('--')) out.set(c.id, (await runReadOnly(session, c.sql)).rows.length);
    return out;
  } finally { session.close(); }
}

