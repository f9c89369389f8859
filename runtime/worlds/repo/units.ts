import type { Rng } from '../../engine/rng.ts';
import { pyLit, type PyValue } from '../code/generator.ts';

/*
 * The building blocks of generated repositories: a unit is one function (with its module-level lines and imports),
 * a way to draw test inputs, its intended behaviour written in TS (the expected values of every test; the
 * generation check runs the Python against them, so a template whose Python disagrees is caught), and the bugs
 * that can be seeded in it: an exact `from` → `to` edit of its source, labelled with a bug kind.
 */

export const BUG_KINDS = [
  'wrong_operator', 'off_by_one', 'missing_case', 'wrong_call', 'wrong_constant', 'swapped_args', 'wrong_comparison',
  'missing_return', 'wrong_default', 'inverted_condition',
] as const;
export type BugKind = (typeof BUG_KINDS)[number];

export interface Bug { kind: BugKind; from: string; to: string }

export interface Unit {
  template: string;
  name: string;
  /** Lines at the top of the module (imports, constants). */
  header: string[];
  source: string;
  /** Argument lists of calls; `f` gives the intended result (an Error's name when it should raise). */
  input(r: Rng): PyValue[];
  f(...args: any[]): PyValue;
  bugs: Bug[];
  /** Imports from util.py (cross-file units). */
  usesUtil: boolean;
}

const ints = (r: Rng, lo: number, hi: number, min = 0, max = 6): number[] => Array.from({ length: r.int(min, max) }, () => r.int(lo, hi));
const WORDS = ['apple', 'kiwi', 'plum', 'fig', 'melon', 'pear', 'lime', 'grape', 'date', 'peach'];

type Maker = (r: Rng) => Unit;

const MAKERS: Record<string, Maker> = {
  mean: (r) => ({
    template: 'mean', name: r.pick(['mean', 'average', 'mean_value']), header: [], usesUtil: false,
    source: 'def NAME(xs):\n    if not xs:\n        return 0\n    return sum(xs) // len(xs)\n',
    input: (g) => [ints(g, 0, 40, 0, 6)], f: (xs: number[]) => (xs.length ? Math.floor(xs.reduce((s, x) => s + x, 0) / xs.length) : 0),
    bugs: [
      { kind: 'missing_case', from: '    if not xs:\n        return 0\n', to: '' },
      { kind: 'wrong_operator', from: 'sum(xs) // len(xs)', to: 'sum(xs) % len(xs)' },
      { kind: 'off_by_one', from: 'sum(xs) // len(xs)', to: 'sum(xs) // (len(xs) + 1)' },
    ],
  }),
  count_in_range: (r) => ({
    template: 'count_in_range', name: r.pick(['count_in_range', 'count_between', 'how_many_in']), header: [], usesUtil: false,
    source: 'def NAME(xs, lo, hi):\n    n = 0\n    for x in xs:\n        if lo <= x < hi:\n            n += 1\n    return n\n',
    input: (g) => { const lo = g.int(0, 10); return [ints(g, 0, 25, 0, 8), lo, lo + g.int(1, 12)]; },
    f: (xs: number[], lo: number, hi: number) => xs.filter((x) => lo <= x && x < hi).length,
    bugs: [
      { kind: 'wrong_comparison', from: 'lo <= x < hi', to: 'lo < x < hi' },
      { kind: 'inverted_condition', from: 'if lo <= x < hi:', to: 'if not (lo <= x < hi):' },
      { kind: 'missing_return', from: '    return n\n', to: '' },
    ],
  }),
  sum_multiples: (r) => {
    const k = r.int(2, 9);
    return {
      template: 'sum_multiples', name: r.pick(['weighted_total', 'sum_scaled', 'triangle_scaled']), header: [], usesUtil: false,
      source: `def NAME(n):\n    total = 0\n    for i in range(1, n + 1):\n        total += i * ${k}\n    return total\n`,
      input: (g) => [g.int(0, 30)], f: (n: number) => (k * n * (n + 1)) / 2,
      bugs: [
        { kind: 'off_by_one', from: 'range(1, n + 1)', to: 'range(1, n)' },
        { kind: 'wrong_constant', from: `total += i * ${k}`, to: `total += i * ${k + 1}` },
      ],
    };
  },
  with_tax: (r) => {
    const rate = r.pick([5, 8, 10, 15, 20, 25]);
    return {
      template: 'with_tax', name: r.pick(['with_tax', 'gross_price', 'price_with_vat']), header: [`RATE_PERCENT = ${rate}`], usesUtil: false,
      source: 'def NAME(amount):\n    return amount + amount * RATE_PERCENT // 100\n',
      input: (g) => [g.int(0, 500)], f: (a: number) => a + Math.floor((a * rate) / 100),
      bugs: [
        { kind: 'wrong_constant', from: `RATE_PERCENT = ${rate}`, to: `RATE_PERCENT = ${rate + 1}` },
        { kind: 'wrong_operator', from: 'amount + amount * RATE_PERCENT', to: 'amount - amount * RATE_PERCENT' },
      ],
    };
  },
  label: (r) => {
    const sep = r.pick(['-', ':', '/']);
    return {
      template: 'label', name: r.pick(['make_label', 'pair_label', 'join_pair']), header: [], usesUtil: false,
      source: `def NAME(a, b, sep=${pyLit(sep)}):\n    return f"{a}{sep}{b}"\n`,
      input: (g) => [g.pick(WORDS), g.int(0, 99)], f: (a: string, b: number) => `${a}${sep}${b}`,
      bugs: [{ kind: 'wrong_default', from: `sep=${pyLit(sep)}`, to: `sep=${pyLit(sep === '-' ? '_' : '-')}` }],
    };
  },
  bounded: (r) => {
    const lo = r.int(0, 10), hi = lo + r.int(5, 30);
    return {
      template: 'bounded', name: r.pick(['bounded', 'limit_value', 'keep_in_range']), header: ['from .util import clamp'], usesUtil: true,
      source: `def NAME(x):\n    return clamp(x, ${lo}, ${hi})\n`,
      input: (g) => [g.int(0, hi + 15)], f: (x: number) => Math.max(lo, Math.min(x, hi)),
      bugs: [
        { kind: 'swapped_args', from: `clamp(x, ${lo}, ${hi})`, to: `clamp(x, ${hi}, ${lo})` },
        { kind: 'wrong_constant', from: `clamp(x, ${lo}, ${hi})`, to: `clamp(x, ${lo}, ${hi + 5})` },
      ],
    };
  },
  adjust: (r) => {
    const k = r.int(2, 9);
    return {
      template: 'adjust', name: r.pick(['adjust', 'bump', 'offset_value']), header: ['from .util import scale, shift'], usesUtil: true,
      source: `def NAME(x):\n    return shift(x, ${k})\n`,
      input: (g) => [g.int(0, 50)], f: (x: number) => x + k,
      bugs: [{ kind: 'wrong_call', from: `shift(x, ${k})`, to: `scale(x, ${k})` }],
    };
  },
  long_enough: (r) => {
    const k = r.int(3, 6);
    return {
      template: 'long_enough', name: r.pick(['long_enough', 'is_valid_name', 'accept_word']), header: [], usesUtil: false,
      source: `def NAME(word):\n    if len(word) >= ${k}:\n        return True\n    return False\n`,
      input: (g) => [g.pick(WORDS).slice(0, g.int(1, 6))], f: (w: string) => w.length >= k,
      bugs: [
        { kind: 'inverted_condition', from: `if len(word) >= ${k}:`, to: `if len(word) < ${k}:` },
        { kind: 'wrong_comparison', from: `if len(word) >= ${k}:`, to: `if len(word) > ${k}:` },
      ],
    };
  },
  find: (r) => ({
    template: 'find', name: r.pick(['find_index', 'position_of', 'locate']), header: [], usesUtil: false,
    source: 'def NAME(xs, target):\n    for i, x in enumerate(xs):\n        if x == target:\n            return i\n    return -1\n',
    input: (g) => { const xs = ints(g, 0, 9, 0, 6); return [xs, g.chance(0.5) && xs.length ? g.pick(xs) : g.int(0, 12)]; },
    f: (xs: number[], t: number) => xs.indexOf(t),
    bugs: [
      { kind: 'missing_return', from: '    return -1\n', to: '' },
      { kind: 'wrong_constant', from: '    return -1\n', to: '    return 0\n' },
    ],
  }),
  grade: (r) => {
    const a = r.int(70, 90), b = r.int(40, 60);
    return {
      template: 'grade', name: r.pick(['grade', 'level_of', 'rank_score']), header: [], usesUtil: false,
      source: `def NAME(score):\n    if score >= ${a}:\n        return "high"\n    if score >= ${b}:\n        return "mid"\n    return "low"\n`,
      input: (g) => [g.chance(0.5) ? g.pick([a, b]) : g.int(0, 100)], f: (s: number) => (s >= a ? 'high' : s >= b ? 'mid' : 'low'),
      bugs: [
        { kind: 'missing_case', from: `    if score >= ${b}:\n        return "mid"\n`, to: '' },
        { kind: 'wrong_comparison', from: `if score >= ${a}:`, to: `if score > ${a}:` },
      ],
    };
  },
  repeat: (r) => {
    const k = r.int(2, 4);
    return {
      template: 'repeat', name: r.pick(['repeat_word', 'echo', 'say_times']), header: [], usesUtil: false,
      source: `def NAME(word, times=${k}):\n    return " ".join([word] * times)\n`,
      input: (g) => [g.pick(WORDS)], f: (w: string) => Array(k).fill(w).join(' '),
      bugs: [
        { kind: 'wrong_default', from: `times=${k}`, to: `times=${k + 1}` },
        { kind: 'off_by_one', from: '[word] * times', to: '[word] * (times - 1)' },
      ],
    };
  },
  safe_div: (r) => ({
    template: 'safe_div', name: r.pick(['safe_div', 'ratio', 'per_unit']), header: [], usesUtil: false,
    source: 'def NAME(a, b):\n    if b == 0:\n        return None\n    return a // b\n',
    input: (g) => [g.int(0, 100), g.chance(0.25) ? 0 : g.int(1, 12)], f: (a: number, b: number) => (b === 0 ? null as unknown as PyValue : Math.floor(a / b)),
    bugs: [
      { kind: 'missing_case', from: '    if b == 0:\n        return None\n', to: '' },
      { kind: 'wrong_operator', from: 'return a // b', to: 'return a % b' },
      { kind: 'swapped_args', from: 'return a // b', to: 'return b // a' },
    ],
  }),
};

export const UNIT_TEMPLATES = Object.keys(MAKERS);

export function makeUnit(template: string, r: Rng): Unit {
  const u = MAKERS[template](r);
  return { ...u, source: u.source.replace('NAME', u.name), bugs: u.bugs.map((b) => ({ ...b })) };
}

/** A Python literal that also covers None (PyValue has no null). */
export const lit = (v: PyValue | null): string => (v === null ? 'None' : pyLit(v));
