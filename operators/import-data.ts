import { z } from 'zod';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { operator, table } from '../runtime/engine/operator.ts';
import { Trajectory } from '../schemas/trajectory.ts';
import { importRow } from '../runtime/synth/import.ts';
import { fileRows, type ReadStats } from '../runtime/synth/import-files.ts';

/*
 * Imports local open data (JSONL or Parquet in OpenAI messages+tools, ShareGPT or Hermes function-calling form)
 * as trajectories. Invalid rows are kept as quarantined trajectories with file, line and reason (filter them on
 * `finish_reason = 'error'`). The cache key sees the paths, the files' sizes and mtimes, and `fingerprint` (a
 * content hash or version, for edits that keep size and mtime).
 */
function sourceFiles(x: string): string[] {
  const abs = resolve(x);
  if (!existsSync(abs)) throw new Error(`import-data: ${x} does not exist (paths are relative to ${process.cwd()})`);
  return statSync(abs).isDirectory() ? readdirSync(abs).filter((f) => /\.(jsonl|json|parquet)$/.test(f)).sort().map((f) => join(abs, f)) : [abs];
}

export const importData = operator({
  name: 'import-data',
  version: 3,
  params: z.object({
    paths: z.array(z.string()).min(1).describe('files or folders (*.jsonl, *.json, *.parquet)'),
    format: z.enum(['auto', 'openai', 'sharegpt', 'hermes']).default('auto'),
    world: z.string().default('imported'),
    source: z.string().default('import'),
    fingerprint: z.string().default(''),
  }),
  inputs: {},
  output: table(Trajectory, 'Trajectory'),
  // Sizes and mtimes of the source files enter the key, so a file edited in place reruns the import.
  fingerprint: (p) => p.paths.flatMap((x) => {
    try { return sourceFiles(x).map((f) => [f, statSync(f).size, Math.floor(statSync(f).mtimeMs)]); } catch { return [[x, 'missing']]; }
  }),
  async run({ params: p, out, ctx }) {
    const files = p.paths.flatMap(sourceFiles);
    let bad = 0;
    let rows = 0;
    const stats: ReadStats = { blankLines: 0 };
    for (const file of files) {
      let batch: Trajectory[] = [];
      for await (const { line, row } of fileRows(file, stats)) {
        rows++;
        const t = importRow(row, p.format, { file, line, world: p.world, source: p.source });
        if (t.finish_reason === 'error') bad++;
        batch.push(t);
        if (batch.length >= 2048) { await out.write(batch); batch = []; }
        ctx.progress.tick();
      }
      await out.write(batch);
    }
    ctx.metric('quarantined', bad);
    ctx.metric('blank_lines', stats.blankLines);
    ctx.log(`imported ${rows} rows from ${files.length} file(s): ${rows - bad} valid, ${bad} quarantined, ${stats.blankLines} blank line(s) skipped`);
    if (bad) ctx.log(`${bad} rows quarantined; see: select errors from <node> where finish_reason = 'error'`);
  },
});
