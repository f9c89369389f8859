import { DuckDBInstance } from '@duckdb/node-api';
import { readFileSync } from 'node:fs';

/*
 * Local open-data files, row by row with their line numbers (JSONL: 1-based line; Parquet: 1-based row). A line
 * that is not valid UTF-8 or not valid JSON comes back as an Error so the importer can quarantine it by number.
 */

export interface SourceRow { line: number; row: unknown }

/** What a reader skipped without yielding a row (counted in the import report). */
export interface ReadStats { blankLines: number }

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function* jsonlRows(file: string, stats: ReadStats = { blankLines: 0 }): Generator<SourceRow> {
  const buf = readFileSync(file);
  let start = 0;
  for (let line = 1; start < buf.length; line++) {
    let end = buf.indexOf(0x0a, start);
    if (end < 0) end = buf.length;
    const bytes = buf.subarray(start, end);
    start = end + 1;
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      yield { line, row: new Error('(line): invalid UTF-8') };
      continue;
    }
    if (!text.trim()) {
      stats.blankLines++;
      continue;
    }
    try {
      yield { line, row: JSON.parse(text) };
    } catch (e) {
      yield { line, row: new Error(`(line): invalid JSON: ${(e as Error).message}`) };
    }
  }
}

/** Parquet rows as plain JSON (DuckDB's to_json keeps nested lists/structs). */
export async function* parquetRows(file: string): AsyncGenerator<SourceRow> {
  const inst = await DuckDBInstance.create(':memory:');
  const conn = await inst.connect();
  try {
    const path = file.replace(/'/g, "''");
    const res = await conn.runAndReadAll(`SELECT to_json(t)::VARCHAR AS j FROM read_parquet('${path}') t`);
    let line = 0;
    for (const r of res.getRowObjectsJson() as { j: string }[]) {
      line++;
      try {
        yield { line, row: JSON.parse(r.j) };
      } catch (e) {
        yield { line, row: new Error(`(row): ${(e as Error).message}`) };
      }
    }
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
}

export async function* fileRows(file: string, stats?: ReadStats): AsyncGenerator<SourceRow> {
  if (file.endsWith('.parquet')) yield* parquetRows(file);
  else yield* jsonlRows(file, stats);
}
