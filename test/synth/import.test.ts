import { afterAll, describe, expect, it } from 'vitest';
import { DuckDBInstance } from '@duckdb/node-api';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Trajectory } from '../../schemas/trajectory.ts';
import { importRow } from '../../runtime/synth/import.ts';
import { fileRows } from '../../runtime/synth/import-files.ts';

const dir = mkdtempSync(join(tmpdir(), 'af-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tools = [{ type: 'function', function: { name: 'get_order', description: 'Get an order', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } } }];
const openai = {
  id: 'o1', tools,
  messages: [
    { role: 'user', content: 'Where is O-1?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_order', arguments: '{"order_id":"O-1"}' } }] },
    { role: 'tool', tool_call_id: 'c1', content: '{"status":"shipped"}' },
    { role: 'assistant', content: 'It shipped. Ünïcödé ✓ 🚚' },
  ],
};
const sharegpt = {
  tools: JSON.stringify(tools), system: 'be nice',
  conversations: [
    { from: 'human', value: 'Where is O-1?' },
    { from: 'function_call', value: '{"name": "get_order", "arguments": {"order_id": "O-1"}}' },
    { from: 'observation', value: '{"status":"shipped"}' },
    { from: 'gpt', value: 'It shipped.' },
  ],
};
const hermes = {
  conversations: [
    { from: 'system', value: `You are a function calling AI. <tools> ${JSON.stringify(tools)} </tools>` },
    { from: 'human', value: 'Where is O-1?' },
    { from: 'gpt', value: "<tool_call>\n{'arguments': {'order_id': 'O-1'}, 'name': 'get_order'}\n</tool_call>" },
    { from: 'tool', value: '<tool_response>\n{"status":"shipped"}\n</tool_response>' },
    { from: 'gpt', value: 'It shipped.' },
  ],
};
const badRows: [unknown, RegExp][] = [
  [{ messages: [{ role: 'robot', content: 'x' }] }, /messages\[0\]\.role: unknown role "robot"/],
  [{ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: '', tool_calls: [{ id: 'a', function: { name: 'f', arguments: '{"x":' } }] }] }, /messages\[1\]\.tool_calls\[0\]\.function\.arguments: not a JSON object/],
  [{ conversations: [{ from: 'human', value: 'x' }, { from: 'observation', value: '{}' }] }, /conversations\[1\]: tool result without a preceding tool call/],
  [{ conversations: [{ from: 'human', value: 'x' }, { from: 'gpt', value: '<tool_call>{nope</tool_call>' }] }, /tool call is not valid JSON/],
  [{ messages: [{ role: 'user', content: 'only a question' }] }, /no assistant turn/],
  // an OpenAI tool result must answer an earlier, still open call
  [{ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: '', tool_calls: [{ id: 'a', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'b', content: '{}' }, { role: 'assistant', content: 'ok' }] },
    /messages\[2\]\.tool_call_id: "b" answers no earlier tool call \(open calls: "a"\)/],
  [{ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: '', tool_calls: [{ id: 'a', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', content: '{}' }, { role: 'assistant', content: 'ok' }] },
    /messages\[2\]\.tool_call_id: missing: a tool result must say which earlier tool call it answers/],
  [{ messages: [{ role: 'user', content: 'x' }, { role: 'tool', tool_call_id: 'a', content: '{}' }, { role: 'assistant', content: 'ok' }] }, /messages\[1\]\.tool_call_id: "a" answers no earlier tool call \(no call is waiting for a result\)/],
  [{ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: '', tool_calls: [{ id: 'a', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'a', content: '{}' }, { role: 'tool', tool_call_id: 'a', content: '{}' }, { role: 'assistant', content: 'ok' }] },
    /messages\[3\]\.tool_call_id: "a" answers no earlier tool call/],
  [[1, 2], /neither "messages"/],
];

describe('import', () => {
  it('maps OpenAI, ShareGPT and Hermes rows to the same trajectory shape', () => {
    const ctx = { file: 'x.jsonl', line: 1, world: 'imported', source: 'import' };
    const shapes = [openai, sharegpt, hermes].map((r) => {
      const t = Trajectory.parse(importRow(r, 'auto', ctx));
      expect(t.errors).toEqual([]);
      return t.messages.filter((m) => m.role !== 'system').map((m) => [m.role, m.tool_calls.map((c) => [c.name, c.arguments]), m.role === 'tool' ? m.content : '']);
    });
    expect(shapes[1]).toEqual(shapes[0]);
    expect(shapes[2]).toEqual(shapes[0]);
    expect(importRow(hermes, 'auto', ctx).tools[0].function.name).toBe('get_order');
    expect(importRow(openai, 'auto', ctx).task_id).toBe('import:o1');
  });

  it('quarantines bad rows with file, line and field; invalid UTF-8 and JSON lines included', async () => {
    const file = join(dir, 'mixed.jsonl');
    const lines = [JSON.stringify(openai), '{"messages": [', ...badRows.map(([r]) => JSON.stringify(r)), JSON.stringify(sharegpt)];
    const bytes = Buffer.concat([Buffer.from(lines.join('\n') + '\n'), Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]), Buffer.from('\n' + JSON.stringify(hermes) + '\n')]);
    writeFileSync(file, bytes);
    const out: Trajectory[] = [];
    const stats = { blankLines: 0 };
    for await (const { line, row } of fileRows(file, stats)) out.push(importRow(row, 'auto', { file, line, world: 'imported', source: 'import' }));
    expect(stats.blankLines).toBe(1);
    expect(out.map((t) => t.finish_reason)).toEqual(['answered', 'error', ...badRows.map(() => 'error'), 'answered', 'error', 'answered']);
    const errs = out.filter((t) => t.errors.length).map((t) => t.errors[0].message);
    expect(errs[0]).toMatch(new RegExp(`${file}:2: \\(line\\): invalid JSON`));
    badRows.forEach(([, re], i) => { expect(errs[i + 1]).toMatch(re); expect(errs[i + 1]).toContain(`${file}:${i + 3}:`); });
    expect(errs.at(-1)).toBe(`${file}:${lines.length + 1}: (line): invalid UTF-8`);
    expect(out.at(-1)!.id).toBe(`import:mixed.jsonl:${lines.length + 3}`);
    for (const t of out) Trajectory.parse(t);
  });

  it('reads Parquet rows (nested messages and tool calls) with row numbers', async () => {
    const src = join(dir, 'rows.jsonl');
    writeFileSync(src, [openai, { ...openai, id: 'o2' }].map((r) => JSON.stringify(r)).join('\n'));
    const pq = join(dir, 'rows.parquet');
    const inst = await DuckDBInstance.create(':memory:');
    const conn = await inst.connect();
    await conn.run(`COPY (SELECT * FROM read_json('${src}')) TO '${pq}' (FORMAT parquet)`);
    conn.closeSync();
    inst.closeSync();
    const out: Trajectory[] = [];
    for await (const { line, row } of fileRows(pq)) out.push(importRow(row, 'openai', { file: pq, line, world: 'w', source: 's' }));
    expect(out.map((t) => [t.id, t.task_id, t.errors.length, t.messages.length])).toEqual([['import:rows.parquet:1', 'import:o1', 0, 4], ['import:rows.parquet:2', 'import:o2', 0, 4]]);
    expect(out[0].messages[1].tool_calls[0].arguments).toEqual({ order_id: 'O-1' });
    expect(out[0].messages[3].content).toBe('It shipped. Ünïcödé ✓ 🚚');
  });
});
