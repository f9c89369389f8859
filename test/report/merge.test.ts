/*
 * The merge section reads each merge node's merge.json: the record's method, inputs and timings, and per-tensor
 * diagnostics as bar charts when the record has them (one tick per tensor in the browser); without them the page
 * says they are not recorded. The merge node here is a fixture that commits a model directory with a merge.json of
 * the merge operator's shape, so no weights are needed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dag } from '../../runtime/engine/dag.ts';
import { model, operator } from '../../runtime/engine/operator.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { collectReport, writeReport } from '../../runtime/report/report.ts';
import { findBrowser, inspectPage, launch } from './browser.ts';

const TENSORS = ['layers.0.q', 'layers.0.k', 'layers.1.q'];

const mergeRecord = operator({
  name: 'merge', version: 1, params: z.object({ diagnostics: z.boolean() }), inputs: {}, output: model(),
  async run({ params, out }) {
    writeFileSync(join(out.dir, 'config.json'), '{}');
    writeFileSync(join(out.dir, 'merge.json'), JSON.stringify({
      method: 'ties', params: { method: 'ties', density: 0.5 }, inputs: { base: { node: 'sft', key: 'k0' }, experts: [{ node: 'rl_bank', key: 'k1' }, { node: 'rl_retail', key: 'k2' }] },
      tensors: 3, bytesIn: 3e6, bytesOut: 1e6, seconds: 1.25, secondsStatistics: 0.5,
      ...(params.diagnostics ? { diagnostics: TENSORS.map((tensor, i) => ({ tensor, sign_agreement: 0.5 + i / 10, kept_fraction: i === 0 ? 0 : 0.5 })) } : {}),
    }));
  },
});

describe('merge diagnostics in the report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'af-report-merge-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the record as a table, per-tensor diagnostics as charts with one mark per tensor', async () => {
    const d = dag('merge-report', (b) => { b.node('merged', mergeRecord, { diagnostics: true }); });
    const storeDir = join(dir, 'with');
    expect((await runDag(d, { storeDir })).ok).toBe(true);
    const s = (await collectReport({ storeDir, dag: d })).sections.find((x) => x.id === 'merge')!;
    expect(s.missing).toEqual([]);
    expect(s.tables[0].rows[0]).toMatchObject({ method: 'ties', base: 'sft', experts: 'rl_bank, rl_retail', density: 0.5, tensors: 3, 'MB in': 3 });
    expect(s.charts.map((c) => [c.id, c.x, c.y, c.rows.length])).toEqual([
      ['merge-merged-sign_agreement', 'tensor', 'sign_agreement', 3], ['merge-merged-kept_fraction', 'tensor', 'kept_fraction', 3]]);

    const chromium = findBrowser();
    if (!chromium) return;
    const out = join(dir, 'merge.html');
    await writeReport({ storeDir, dag: d, out });
    const browser = await launch(chromium);
    try {
      const page = await inspectPage(browser, out);
      expect(page.errors).toEqual([]);
      // kept_fraction 0 for the first tensor: no rect, but its tick is there
      expect(page.charts.filter((c) => c.id.startsWith('merge-')).map((c) => c.marks)).toEqual([3, 3]);
    } finally { await browser.close(); }
  });

  it('a merge.json without per-tensor diagnostics is reported as missing them', async () => {
    const d = dag('merge-report', (b) => { b.node('merged', mergeRecord, { diagnostics: false }); });
    const storeDir = join(dir, 'without');
    expect((await runDag(d, { storeDir })).ok).toBe(true);
    const s = (await collectReport({ storeDir, dag: d })).sections.find((x) => x.id === 'merge')!;
    expect(s.charts).toEqual([]);
    expect(s.missing).toEqual([expect.stringMatching(/^merged: merge.json records no per-tensor diagnostics/)]);
  });
});
