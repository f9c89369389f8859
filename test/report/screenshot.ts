/*
 * A PNG of a report page for the README (the system Chromium, as in the tests):
 *   npx tsx test/report/screenshot.ts report.html report.png [--height 1800] [--scale 0.6]
 * The top `height` CSS pixels of the page at 1100 px wide, scaled by `scale` to keep the file small.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { NO_BROWSER, findBrowser, launch } from './browser.ts';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { height: { type: 'string' }, scale: { type: 'string' } } });
const [html, png] = positionals;
if (!html || !png) { console.error('usage: npx tsx test/report/screenshot.ts report.html report.png [--height 1800] [--scale 0.6]'); process.exit(2); }
const chromium = findBrowser();
if (!chromium) { console.error(NO_BROWSER); process.exit(1); }
const browser = await launch(chromium);
try {
  const page = await browser.newPage();
  const height = Number(values.height ?? 1800);
  await page.setViewport({ width: 1100, height, deviceScaleFactor: Number(values.scale ?? 0.6) });
  await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
  await page.waitForFunction(() => document.body.dataset.rendered !== 'pending', { timeout: 30_000 });
  const shot = await page.screenshot({ type: 'png', clip: { x: 0, y: 0, width: 1100, height } });
  writeFileSync(png, shot);
  console.log(`${png}: ${(shot.length / 1e3).toFixed(0)} kB`);
} finally {
  await browser.close();
}
