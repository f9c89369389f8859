import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { calculate } from '../../runtime/worlds/tau/calc.ts';
import { floatRepr, hashableRepr, mkFloat, num, parsePyJson, pyDumps, round2, strRepr } from '../../runtime/worlds/tau/pyvalue.ts';

/*
 * Differential tests against the system Python: the τ-bench reward hashes Python's str() of the database and
 * observations are Python json.dumps strings, so float repr, round(x, 2), string repr, json.dumps and eval of
 * arithmetic must agree with CPython exactly.
 */
const python = (code: string, input: string) => execFileSync('/usr/bin/python3', ['-c', code], { input, encoding: 'utf8' });

function sampleFloats(n: number): number[] {
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const out = [0.125, 0.375, 2.675, 1.005, -0.125, 1e16, 1e15, 1.5e-5, 0.0001, 123456789.125, 5e-324, 1.7976931348623157e308, -0.0];
  for (let i = 0; i < n; i++) {
    const mag = 10 ** Math.floor(rnd() * 24 - 8);
    out.push((rnd() - 0.5) * mag, Math.round(rnd() * 100000) / 8, Math.round(rnd() * 1e6) / 100);
  }
  return out;
}

describe('Python-faithful values', () => {
  it('float repr and round(x, 2) match CPython', () => {
    const xs = sampleFloats(700);
    const py = python('import sys,json\nfor l in sys.stdin:\n    x=float(l)\n    print(repr(x), repr(round(x,2)))', xs.map((x) => (Object.is(x, -0) ? '-0.0' : x.toPrecision(17))).join('\n')).trim().split('\n');
    const ours = xs.map((x) => `${floatRepr(x)} ${floatRepr(num(round2(mkFloat(x))))}`);
    expect(ours).toEqual(py);
  });

  it('string repr and json.dumps match CPython, and the parser keeps 1.0 a float', () => {
    const strings = ['plain', "it's", 'say "hi"', `both ' and "`, 'tab\tnew\nline\\', 'café ünïcode', '\u0000\u007f\u0085\u00a0\u2028', 'emoji 😀', '\u200b zero width'];
    const py = python('import sys,json\nfor l in sys.stdin:\n    s=json.loads(l)\n    print(repr(s)); print(json.dumps(s))', strings.map((s) => JSON.stringify(s)).join('\n')).split('\n').slice(0, -1);
    expect(strings.flatMap((s) => [strRepr(s), pyDumps(s)])).toEqual(py);
    const doc = '{"b": [1, 1.0, -2.50, 3e2, true, null], "10": {"2": "x", "1": "y"}, "a": "é"}';
    expect(pyDumps(parsePyJson(doc))).toBe(python('import json,sys\nprint(json.dumps(json.loads(sys.stdin.read())))', doc).trim());
    expect(hashableRepr(parsePyJson(doc))).toBe(python('import json,sys\ndef h(v):\n    if isinstance(v, dict): return tuple((k, h(x)) for k, x in sorted(v.items()))\n    if isinstance(v, list): return tuple(h(x) for x in v)\n    return v\nprint(str(h(json.loads(sys.stdin.read()))))', doc).trim());
  });

  it("calculate matches Python's round(float(eval(e)), 2)", () => {
    const exprs = ['3131.1 + 4777.75 + 367.38', '1/3', '2**10', '2**-2', '-2**2', '(1+2)*3/4', '7//2', '-7//2', '7.5//2', '10/4*3', '0.1+0.2', '2**0.5', '1e3'.replace('e', '*10**'), '((2))', '100 - 0.125', '3 - -3'];
    const py = python('import sys\nfor l in sys.stdin:\n    print(str(round(float(eval(l)), 2)))', exprs.join('\n')).trim().split('\n');
    expect(exprs.map(calculate)).toEqual(py);
    expect(calculate('1/0')).toBe('Error: division by zero');
    expect(calculate('')).toBe('Error: invalid syntax (<string>, line 0)');
  });
});
