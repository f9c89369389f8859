import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message } from '../../schemas/message.ts';
import { BFCL_CATEGORIES, isRelevanceCategory, loadBfcl, type BfclEntry } from '../../runtime/eval/bfcl/data.ts';
import { renderAnswer } from '../../runtime/eval/bfcl/render.ts';
import { scoreEntry, accuracyByCategory } from '../../runtime/eval/bfcl/score.ts';
import { parsePythonCalls } from '../../runtime/eval/bfcl/pycall.ts';
import { parsePyJson, pyDumps, type PyObj } from '../../runtime/worlds/tau/pyvalue.ts';

/*
 * BFCL checker self-test: the possible answers, rendered as native tool calls, score 100% except for six entries
 * that no output can pass under upstream's own checker (their possible answer contradicts the function doc); and
 * systematic mutations of every applicable entry score 0 with the reason BFCL gives.
 */
const UNSATISFIABLE: Record<string, string> = {
  parallel_multiple_12: "answer has 'permeability', which calculate_voltage_difference's doc lacks",
  parallel_multiple_26: "answer has 'type', which bank.calculate_balance's doc lacks",
  'live_simple_106-63-0': 'required params auto_loan_payment_start/bank_hours_start have an empty acceptable list',
  'live_simple_112-68-0': 'required params (acc_routing_start, …) have an empty acceptable list',
  'live_multiple_862-181-3': "answer has 'journey_start_time', which Trains_1_FindTrains's doc lacks",
  'live_multiple_964-207-0': "answer has 'question', not in the doc, and omits the required 'statement'",
};

const all = BFCL_CATEGORIES.flatMap((c) => loadBfcl(c));
const ast = all.filter((e) => !isRelevanceCategory(e.category));
const text = (content: string): Message => ({ role: 'assistant', content, tool_calls: [], tool_call_id: null, name: null });
const withCalls = (calls: Message['tool_calls']): Message => ({ ...text(''), tool_calls: calls });

type Mutation = (e: BfclEntry, m: Message) => { msg: Message; expect: string } | null;
// Arguments stay Python-typed (parsePyJson/pyDumps): a JSON round trip would turn 5.0 into 5, which BFCL rejects in a float list.
const argsOf = (m: Message, i = 0) => ({ ...(parsePyJson(m.tool_calls[i].raw) as PyObj) });
const setArgs = (m: Message, args: PyObj): Message =>
  withCalls(m.tool_calls.map((c, i) => (i === 0 ? { ...c, arguments: null, raw: pyDumps(args) } : c)));
const docOf = (e: BfclEntry, m: Message) => e.functions.find((f) => f.name.replaceAll('.', '_') === m.tool_calls[0].name)!;
/** A parameter of the first call whose doc type is `type` and whose acceptable values are of that Python type. */
function paramOfType(e: BfclEntry, m: Message, type: string, pyType: string): string | undefined {
  const doc = docOf(e, m), props = doc.parameters.properties as PyObj;
  const answers = Object.values(e.answers![0])[0] as PyObj;
  return Object.keys(argsOf(m)).find((p) => (props[p] as PyObj)?.type === type && (answers[p] as unknown[]).some((v) => v !== '' && typeof v === pyType));
}

const MUTATIONS: Record<string, Mutation> = {
  wrong_name: (_e, m) => ({ msg: withCalls(m.tool_calls.map((c, i) => (i === 0 ? { ...c, name: `${c.name}_wrong` } : c))), expect: 'wrong_func_name' }),
  missing_required: (e, m) => {
    const p = (docOf(e, m).parameters.required ?? []).find((r) => r in argsOf(m));
    if (!p) return null;
    const { [p]: _, ...rest } = argsOf(m);
    return { msg: setArgs(m, rest), expect: 'missing_required' };
  },
  wrong_type: (e, m) => {
    const p = paramOfType(e, m, 'string', 'string');
    return p ? { msg: setArgs(m, { ...argsOf(m), [p]: 12345 }), expect: 'type_error:simple' } : null;
  },
  value_not_allowed: (e, m) => {
    const s = paramOfType(e, m, 'string', 'string');
    if (s) return { msg: setArgs(m, { ...argsOf(m), [s]: 'zzz value outside the set' }), expect: 'value_error:string' };
    const n = paramOfType(e, m, 'integer', 'number');
    return n ? { msg: setArgs(m, { ...argsOf(m), [n]: 987654321 }), expect: 'value_error:others' } : null;
  },
  extra_call: (_e, m) => ({ msg: withCalls([...m.tool_calls, { ...m.tool_calls[0], id: 'extra' }]), expect: 'wrong_count' }),
};

describe('BFCL AST scoring', () => {
  it('loads the 11 single-turn categories (3,491 entries)', () => {
    expect(all).toHaveLength(3491);
  });

  it('possible answers rendered as tool calls score 100% (bar 6 unsatisfiable upstream entries)', () => {
    const verdicts = ast.map((e) => scoreEntry(e, renderAnswer(e)));
    const failed = verdicts.filter((v) => !v.valid).map((v) => v.id).sort();
    expect(failed).toEqual(Object.keys(UNSATISFIABLE).sort());
    const acc = accuracyByCategory(verdicts.filter((v) => !(v.id in UNSATISFIABLE)));
    expect(acc.every((a) => a.accuracy === 1)).toBe(true);
  });

  for (const [name, mutate] of Object.entries(MUTATIONS)) {
    it(`mutation "${name}" scores 0 for the right reason on every applicable entry`, () => {
      const wrong: string[] = [];
      let applied = 0;
      for (const e of ast) {
        if (e.id in UNSATISFIABLE) continue;
        const m = mutate(e, renderAnswer(e));
        if (!m) continue;
        applied++;
        const v = scoreEntry(e, m.msg);
        if (v.valid || !`${v.error_type} ${v.error}`.includes(m.expect)) wrong.push(`${e.id}: ${v.valid} ${v.error_type} ${v.error.slice(0, 200)}`);
      }
      expect(applied).toBeGreaterThan(name === 'wrong_type' || name === 'value_not_allowed' ? 1000 : 2000);
      expect(wrong).toEqual([]);
    });
  }

  it('irrelevance: no call is right, any call is wrong; live_relevance: the reverse', () => {
    const irr = all.filter((e) => e.category.includes('irrelevance'));
    const call = (e: BfclEntry) => withCalls([{ id: 'c', name: e.functions[0]?.name.replaceAll('.', '_') ?? 'f', arguments: {}, raw: '{}' }]);
    expect(irr.every((e) => scoreEntry(e, text('I cannot help with that.')).valid)).toBe(true);
    expect(irr.filter((e) => e.functions.length > 0).every((e) => scoreEntry(e, call(e)).error_type === 'irrelevance_error:decoder_success')).toBe(true);
    const rel = all.filter((e) => e.category === 'live_relevance');
    expect(rel.every((e) => scoreEntry(e, call(e)).valid && !scoreEntry(e, text('no')).valid)).toBe(true);
  });
});

describe('BFCL bad input is a scored failure with a reason, never a crash', () => {
  const e = ast.find((x) => x.category === 'simple')!;
  it('non-JSON arguments, prose, binary garbage, huge arguments', () => {
    const broken = withCalls([{ id: 'c', name: 'f', arguments: null, raw: '{"a": ' }]);
    expect(scoreEntry(e, broken)).toMatchObject({ valid: false, error_type: 'ast_decoder:decoder_failed' });
    expect(scoreEntry(e, broken).error).toContain('not JSON');
    expect(scoreEntry(e, text('Sure! The answer is 42.'))).toMatchObject({ valid: false, error_type: 'ast_decoder:decoder_failed' });
    expect(scoreEntry(e, text('\u0000\u0001\ufffd\u0007garbage'))).toMatchObject({ valid: false });
    const m = renderAnswer(e);
    const name = m.tool_calls[0].name, args = argsOf(m);
    const key = Object.keys(args)[0];
    const huge = setArgs(m, { ...args, [key]: 'x'.repeat(2_000_000) });
    const v = scoreEntry(e, huge);
    expect(v.valid).toBe(false);
    expect(v.decoded.length).toBeLessThanOrEqual(4000);
    expect(name).toBeTruthy();
  });

  it('prompting-format replies (Python call syntax, JSON lists) decode', () => {
    expect(pyDumps(parsePythonCalls("[math.f(a=1, b='x', c=[1.0, 2], d={'k': None}), g()]"))).toBe('[{"math.f": {"a": 1, "b": "x", "c": [1.0, 2], "d": {"k": null}}}, {"g": {}}]');
    const m = renderAnswer(e);
    const py = `[${m.tool_calls[0].name}(${Object.entries(argsOf(m)).map(([k, v]) => `${k}=${pyDumps(v)}`).join(', ')})]`;
    expect(scoreEntry(e, text(py)).valid).toBe(true);
    expect(scoreEntry(e, text(`[{"name": "${m.tool_calls[0].name}", "arguments": ${m.tool_calls[0].raw}}]`)).valid).toBe(true);
  });

  it('a malformed benchmark row names the file and line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'af-bfcl-'));
    mkdirSync(join(dir, 'possible_answer'));
    writeFileSync(join(dir, 'BFCL_v4_irrelevance.json'), '{"id": "irrelevance_0", "question": [[]], "function": []}\n{"id": oops}\n');
    expect(() => loadBfcl('irrelevance', dir)).toThrow(`${join(dir, 'BFCL_v4_irrelevance.json')}:2`);
    writeFileSync(join(dir, 'BFCL_v4_simple_python.json'), '{"id": "simple_0", "question": [[{"role": "user", "content": "hi"}]], "function": []}\n');
    writeFileSync(join(dir, 'possible_answer', 'BFCL_v4_simple_python.json'), '{"id": "simple_9", "ground_truth": []}\n');
    expect(() => loadBfcl('simple', dir)).toThrow(/possible_answer\/BFCL_v4_simple_python.json:1: id "simple_9" does not match/);
  });
});
