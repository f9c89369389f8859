/*
 * synthesize-calls: every request parses back (by its concept's own sentence templates) to exactly the call's
 * arguments — required ones always, optional ones iff mentioned, typed as the offered schema says — each kind has
 * its shape (the call names an offered tool; parallel = several calls to one tool; irrelevance = no call and no
 * offered tool for the concept asked), counts are exact, generation is seeded, and the operator's rows reach SFT
 * shards through build-sft-shards' `extra` input.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CALL_KINDS, callConversation, kindCounts, type CallKind } from '../../runtime/synth/calls.ts';
import { CONCEPTS, type Concept } from '../../runtime/synth/call-catalog.ts';
import { synthesizeCalls } from '../../operators/synthesize-calls.ts';
import { buildSftRows, buildSftShards, SftShardParams, SftShardRow } from '../../operators/build-sft-shards.ts';
import { loadChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { Trajectory } from '../../schemas/trajectory.ts';
import { TableReader } from '../../storage/table.ts';
import { conversationTrajectories, modelFromDir, rowsSource } from '../fixtures/operators.ts';
import { tinyTokenizer } from '../fixtures/python.ts';

const escape = (s: string) => s.replace(/[.*+?^$()|\\/]/g, '\\$&');
/** An ask template as a regex whose named groups are the parameter keys ([ … ] optional). */
function askRegex(ask: string): RegExp {
  const body = ask.split(/(\[[^\]]*\]|\{\w+\})/).filter(Boolean).map((part) => {
    if (part.startsWith('[')) return `(?:${askBody(part.slice(1, -1))})?`;
    return askBody(part);
  }).join('');
  return new RegExp(`^${body}$`);
}
function askBody(s: string): string {
  return s.split(/(\{\w+\})/).filter(Boolean).map((p) => (p.startsWith('{') ? `(?<${p.slice(1, -1)}>.+?)` : escape(p))).join('');
}
/** Every (concept, values) reading of one request sentence. */
function parse(text: string): Array<{ concept: Concept; values: Record<string, string> }> {
  return CONCEPTS.flatMap((concept) => concept.asks.flatMap((ask) => {
    const m = askRegex(ask).exec(text);
    return m ? [{ concept, values: Object.fromEntries(Object.entries(m.groups ?? {}).filter(([, v]) => v !== undefined)) }] : [];
  }));
}
const asWords = (concept: Concept, key: string, v: unknown) => {
  const p = concept.params.find((x) => x.key === key)!;
  return p.words ? p.words(v) : String(v);
};
const typeOk = (schema: { type: string; enum?: string[] }, v: unknown) => ({
  integer: Number.isInteger(v), number: typeof v === 'number', string: typeof v === 'string', boolean: typeof v === 'boolean', array: Array.isArray(v),
} as Record<string, boolean>)[schema.type] && (!schema.enum || schema.enum.includes(v as string));
const splitAsks = (text: string) => text.split(/ (?:Also,|And|Then) /).map((s, i) => (i === 0 || s.startsWith('"') ? s : s[0].toUpperCase() + s.slice(1)));

describe('synthesize-calls: single-turn function calling', () => {
  it('the catalog: each ask names every required parameter and only known ones; values have their declared types', () => {
    for (const c of CONCEPTS) {
      for (const ask of c.asks) {
        const keys = [...ask.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        expect(keys.every((k) => c.params.some((p) => p.key === k)), ask).toBe(true);
        for (const p of c.params.filter((x) => !x.optional)) expect(ask.includes(`{${p.key}}`), `${ask} lacks {${p.key}}`).toBe(true);
        // an optional parameter is said only inside a [ … ] segment (else an unmentioned one would print "undefined")
        const outside = ask.replace(/\[[^\]]*\]/g, '');
        for (const p of c.params.filter((x) => x.optional)) expect(outside.includes(`{${p.key}}`), `${ask}: {${p.key}} outside [ ]`).toBe(false);
      }
    }
  });

  it('every conversation reads back to its call: the offered name, typed arguments, optional ones iff mentioned', () => {
    const seen = new Map<CallKind, number>();
    for (let i = 0; i < 400; i++) {
      const kind = CALL_KINDS[i % CALL_KINDS.length];
      const t = Trajectory.parse(callConversation(7, i, kind, 4));
      seen.set(kind, (seen.get(kind) ?? 0) + 1);
      const [user, answer] = t.messages;
      expect(user.role).toBe('user');
      expect(answer.role).toBe('assistant');
      const offered = new Map(t.tools.map((s) => [s.function.name, s.function.parameters as { properties: Record<string, { type: string; enum?: string[] }>; required: string[] }]));
      expect(offered.size).toBe(t.tools.length); // names are distinct
      const asks = splitAsks(user.content);
      if (kind === 'irrelevance') {
        expect(answer.tool_calls).toEqual([]);
        expect(answer.content.length).toBeGreaterThan(20);
        const readings = parse(user.content);
        expect(readings.length, user.content).toBeGreaterThan(0);
        // no offered tool is a function of the concept asked for
        const offeredDoes = new Set(t.tools.map((s) => s.function.description.toLowerCase()));
        for (const r of readings) expect(offeredDoes.has(`${r.concept.does}.`), `${user.content} / ${[...offered.keys()]}`).toBe(false);
        continue;
      }
      expect(answer.content).toBe('');
      expect(answer.tool_calls.length).toBe(asks.length);
      const names = answer.tool_calls.map((c) => c.name);
      if (kind === 'simple') expect(t.tools.length).toBe(1);
      if (kind === 'multiple') expect(t.tools.length).toBeGreaterThan(1);
      if (kind === 'parallel') expect([t.tools.length, new Set(names).size, names.length >= 2]).toEqual([1, 1, true]);
      if (kind === 'parallel_multiple') expect(new Set(names).size).toBe(2);
      answer.tool_calls.forEach((call, k) => {
        const schema = offered.get(call.name);
        expect(schema, `${call.name} is offered`).toBeDefined();
        const args = call.arguments!;
        expect(JSON.parse(call.raw)).toEqual(args);
        for (const r of schema!.required) expect(args, `${call.name} lacks ${r}`).toHaveProperty(r);
        for (const [name, v] of Object.entries(args)) {
          expect(schema!.properties[name], `${call.name}.${name}`).toBeDefined();
          expect(typeOk(schema!.properties[name], v), `${call.name}.${name} = ${JSON.stringify(v)} as ${schema!.properties[name].type}`).toBe(true);
        }
        // the sentence for this call mentions exactly these values (some reading of it does)
        const want = Object.values(args);
        const readings = parse(asks[k]);
        expect(readings.some((r) => Object.keys(r.values).length === want.length
          && Object.entries(r.values).every(([key, words]) => want.some((v) => asWords(r.concept, key, v) === words))), asks[k]).toBe(true);
      });
    }
    expect([...seen.values()].every((n) => n === 80)).toBe(true);
  });

  it('is seeded: the same (seed, index, kind) gives the same conversation, another seed another', () => {
    expect(callConversation(1, 5, 'multiple', 4)).toEqual(callConversation(1, 5, 'multiple', 4));
    const a = Array.from({ length: 20 }, (_, i) => callConversation(1, i, 'simple', 4).messages[0].content);
    const b = Array.from({ length: 20 }, (_, i) => callConversation(2, i, 'simple', 4).messages[0].content);
    expect(a).not.toEqual(b);
    // names vary across conversations of one concept: the model must read them
    const names = new Set(Array.from({ length: 300 }, (_, i) => callConversation(3, i, 'simple', 4).tools[0].function.name));
    expect(names.size).toBeGreaterThan(CONCEPTS.length * 2);
  });

  it('counts kinds exactly by weight, and refuses weights that leave nothing', () => {
    expect(kindCounts(300, { simple: 3, multiple: 3, parallel: 1, parallel_multiple: 1, irrelevance: 2 }))
      .toEqual([['simple', 90], ['multiple', 90], ['parallel', 30], ['parallel_multiple', 30], ['irrelevance', 60]]);
    const odd = kindCounts(7, { simple: 1, irrelevance: 1, parallel: 1 });
    expect(odd.reduce((s, [, n]) => s + n, 0)).toBe(7);
    expect(odd.map(([k]) => k)).toEqual(['simple', 'parallel', 'irrelevance']);
    expect(() => kindCounts(10, { simple: 0 })).toThrow(/params.kinds/);
  });

  it('runs as a node whose rows build-sft-shards packs beside the worlds\' trajectories (extra input)', async () => {
    const store = mkdtempSync(join(tmpdir(), 'af-calls-'));
    try {
      const tokDir = await tinyTokenizer('qwen');
      const worldRows = conversationTrajectories(12);
      const worlds = rowsSource('test-calls-worlds', Trajectory, worldRows);
      const tok = modelFromDir('test-calls-model');
      const d = dag('calls-test', (b) => {
        const calls = b.node('calls', synthesizeCalls, { n: 25, seed: 4 });
        b.node('shards', buildSftShards, { max_len: 4096 }, { trajectories: b.node('worlds', worlds, {}), extra: calls, model: b.node('m', tok, { dir: tokDir }) });
      });
      const r = await runDag(d, { storeDir: store });
      expect([...r.nodes].filter(([, n]) => n.error)).toEqual([]);
      const read = <S extends z.ZodObject>(id: string, schema: S) => new TableReader<z.infer<S>>(id, r.nodes.get(id)!.key, [join(store, 'artifacts', r.nodes.get(id)!.key, 'data.parquet')], schema).all();
      const calls = await read('calls', Trajectory);
      expect(calls.length).toBe(25);
      expect(calls).toEqual(kindCounts(25, synthesizeCalls.params.parse({}).kinds).flatMap(([k, n]) => Array(n).fill(k))
        .map((k, i) => Trajectory.parse(callConversation(4, i, k, 4))));
      const rows = await read('shards', SftShardRow);
      expect(rows).toEqual(buildSftRows(loadChatTokenizer(tokDir), [...worldRows, ...calls], SftShardParams.parse({ max_len: 4096 })));
      expect(rows.flatMap((row) => row.trajectory_ids).filter((id) => id.startsWith('calls:')).sort()).toEqual(calls.map((t) => t.id).sort());
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  }, 120_000);
});
