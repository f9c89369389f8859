import { Rng } from '../../engine/rng.ts';

/*
 * Seeded small function tasks for the code world: templated arithmetic, string and list functions whose reference
 * is 1–3 lines (difficulty = lines), with expected values computed here so no reference has to run to make a
 * task. Inputs stay where Python and JS agree (non-negative ints for % and //, ASCII strings). Template × parameter
 * gives 1,300+ distinct functions (FAMILY_SIZES); a test runs a sample of references against their tests in Python.
 */

export type PyValue = number | boolean | string | PyValue[];

/** A Python literal for a value (JSON strings of ASCII text are valid Python strings). */
export function pyLit(v: PyValue): string {
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  return `[${v.map(pyLit).join(', ')}]`;
}

export interface FunctionTask {
  /** Stable across runs: family and parameters, e.g. "gen/add_k/17". */
  key: string;
  name: string;
  params: string[];
  description: string;
  body: string[];
  /** Argument lists: the first ones are visible, the rest hidden. */
  inputs: PyValue[][];
  expected: PyValue[];
  difficulty: number;
}

interface Family {
  name: string;
  /** Number of parameter settings; setting i (0 ≤ i < size) defines the function. */
  size: number;
  make(i: number): { name: string; params: string[]; description: string; body: string[]; f(...a: any[]): PyValue; input(r: Rng): PyValue[] };
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
const word = (r: Rng, min = 1, max = 8): string => Array.from({ length: r.int(min, max) }, () => LETTERS[r.int(0, 25)]).join('');
const ints = (r: Rng, lo: number, hi: number, min = 0, max = 6): number[] => Array.from({ length: r.int(min, max) }, () => r.int(lo, hi));
const num = (r: Rng): PyValue[] => [r.int(0, 99)];
const SEPS = ['-', '+', ',', ':', '_', '.', '/', '|'];

const FAMILIES: Family[] = [
  { name: 'add_k', size: 99, make: (i) => { const k = i + 1; return { name: `add_${k}`, params: ['x'], description: `returns x plus ${k}`, body: [`return x + ${k}`], f: (x: number) => x + k, input: num }; } },
  { name: 'sub_k', size: 99, make: (i) => { const k = i + 1; return { name: `subtract_${k}`, params: ['x'], description: `returns x minus ${k}`, body: [`return x - ${k}`], f: (x: number) => x - k, input: num }; } },
  { name: 'times_k', size: 49, make: (i) => { const k = i + 2; return { name: `times_${k}`, params: ['x'], description: `returns x multiplied by ${k}`, body: [`return x * ${k}`], f: (x: number) => x * k, input: num }; } },
  { name: 'affine', size: 121, make: (i) => { const a = 2 + (i % 11), b = 1 + Math.floor(i / 11); return { name: `affine_${a}_${b}`, params: ['x'], description: `returns ${a} * x + ${b}`, body: [`return ${a} * x + ${b}`], f: (x: number) => a * x + b, input: num }; } },
  { name: 'divisible', size: 19, make: (i) => { const k = i + 2; return { name: `divisible_by_${k}`, params: ['x'], description: `returns True when x is divisible by ${k}, else False`, body: [`return x % ${k} == 0`], f: (x: number) => x % k === 0, input: num }; } },
  { name: 'clamp', size: 320, make: (i) => { const lo = i % 20, hi = lo + 5 + Math.floor(i / 20); return { name: `clamp_${lo}_${hi}`, params: ['x'], description: `returns x limited to the range ${lo}..${hi} (values below ${lo} become ${lo}, above ${hi} become ${hi})`, body: [`return min(max(x, ${lo}), ${hi})`], f: (x: number) => Math.min(Math.max(x, lo), hi), input: (r) => [r.int(0, 45)] }; } },
  { name: 'count_char', size: 26, make: (i) => { const c = LETTERS[i]; return { name: `count_${c}`, params: ['s'], description: `returns how many times the letter "${c}" occurs in the string s`, body: [`return s.count(${pyLit(c)})`], f: (s: string) => s.split(c).length - 1, input: (r) => [word(r, 0, 10)] }; } },
  { name: 'repeat', size: 5, make: (i) => { const k = i + 2; return { name: `repeat_${k}`, params: ['s'], description: `returns the string s repeated ${k} times`, body: [`return s * ${k}`], f: (s: string) => s.repeat(k), input: (r) => [word(r, 0, 4)] }; } },
  { name: 'sum_above', size: 21, make: (i) => { const k = i; return { name: `sum_above_${k}`, params: ['xs'], description: `returns the sum of the numbers in the list xs that are greater than ${k}`, body: [`return sum(x for x in xs if x > ${k})`], f: (xs: number[]) => xs.filter((x) => x > k).reduce((s, x) => s + x, 0), input: (r) => [ints(r, 0, 30)] }; } },
  { name: 'count_below', size: 21, make: (i) => { const k = i; return { name: `count_below_${k}`, params: ['xs'], description: `returns how many numbers in the list xs are less than ${k}`, body: [`return len([x for x in xs if x < ${k}])`], f: (xs: number[]) => xs.filter((x) => x < k).length, input: (r) => [ints(r, 0, 30)] }; } },
  { name: 'scale_list', size: 11, make: (i) => { const k = i + 2; return { name: `scale_by_${k}`, params: ['xs'], description: `returns a new list with every number of xs multiplied by ${k}`, body: [`return [x * ${k} for x in xs]`], f: (xs: number[]) => xs.map((x) => x * k), input: (r) => [ints(r, 0, 20)] }; } },
  { name: 'shift_list', size: 20, make: (i) => { const k = i + 1; return { name: `shift_by_${k}`, params: ['xs'], description: `returns a new list with ${k} added to every number of xs`, body: [`return [x + ${k} for x in xs]`], f: (xs: number[]) => xs.map((x) => x + k), input: (r) => [ints(r, 0, 20)] }; } },
  { name: 'replace', size: 100, make: (i) => { const a = 'aeiouhnrst'[i % 10], b = 'xyzqwkvjbm'[Math.floor(i / 10)]; return { name: `replace_${a}_with_${b}`, params: ['s'], description: `returns s with every "${a}" replaced by "${b}"`, body: [`return s.replace(${pyLit(a)}, ${pyLit(b)})`], f: (s: string) => s.split(a).join(b), input: (r) => [word(r, 0, 10)] }; } },
  { name: 'poly', size: 20, make: (i) => { const k = i + 1; return { name: `square_plus_${k}x`, params: ['x'], description: `returns x * x + ${k} * x`, body: [`return x * x + ${k} * x`], f: (x: number) => x * x + k * x, input: num }; } },
  { name: 'max_minus', size: 20, make: (i) => { const k = i + 1; return { name: `max_minus_${k}`, params: ['xs'], description: `returns the largest number of the non-empty list xs minus ${k}`, body: [`return max(xs) - ${k}`], f: (xs: number[]) => Math.max(...xs) - k, input: (r) => [ints(r, 0, 50, 1)] }; } },
  { name: 'starts_with', size: 26, make: (i) => { const c = LETTERS[i]; return { name: `starts_with_${c}`, params: ['s'], description: `returns True when the string s starts with "${c}", else False`, body: [`return s.startswith(${pyLit(c)})`], f: (s: string) => s.startsWith(c), input: (r) => [r.chance(0.4) ? c + word(r, 0, 5) : word(r, 0, 6)] }; } },
  { name: 'first_k', size: 5, make: (i) => { const k = i + 1; return { name: `first_${k}`, params: ['xs'], description: `returns the first ${k} elements of the list xs (all of them if it is shorter)`, body: [`return xs[:${k}]`], f: (xs: number[]) => xs.slice(0, k), input: (r) => [ints(r, 0, 9)] }; } },
  { name: 'join', size: 8, make: (i) => { const c = SEPS[i]; return { name: `join_with_${['dash', 'plus', 'comma', 'colon', 'underscore', 'dot', 'slash', 'bar'][i]}`, params: ['words'], description: `returns the strings of the list words joined by "${c}"`, body: [`return ${pyLit(c)}.join(words)`], f: (w: string[]) => w.join(c), input: (r) => [Array.from({ length: r.int(0, 4) }, () => word(r, 1, 5))] }; } },
  { name: 'count_multiples', size: 11, make: (i) => { const k = i + 2; return { name: `count_multiples_of_${k}`, params: ['xs'], description: `returns how many numbers in the list xs are multiples of ${k}`, body: ['n = 0', 'for x in xs:', `    n += x % ${k} == 0`, 'return n'], f: (xs: number[]) => xs.filter((x) => x % k === 0).length, input: (r) => [ints(r, 0, 40)] }; } },
  { name: 'digit_sum', size: 9, make: (i) => { const k = i + 1; return { name: `digit_sum_times_${k}`, params: ['n'], description: `returns the sum of the decimal digits of the non-negative integer n, multiplied by ${k}`, body: ['s = sum(int(d) for d in str(n))', `return s * ${k}`], f: (n: number) => String(n).split('').reduce((s, d) => s + Number(d), 0) * k, input: (r) => [r.int(0, 9999)] }; } },
  { name: 'sum_step', size: 9, make: (i) => { const k = i + 1; return { name: `sum_every_${k}`, params: ['n'], description: `returns the sum of 0, ${k}, ${2 * k}, … for the numbers below n`, body: ['total = 0', `for i in range(0, n, ${k}):`, '    total += i', 'return total'], f: (n: number) => { let t = 0; for (let j = 0; j < n; j += k) t += j; return t; }, input: (r) => [r.int(0, 60)] }; } },
  { name: 'min_pair', size: 20, make: (i) => { const k = i + 1; return { name: `smaller_plus_${k}`, params: ['a', 'b'], description: `returns the smaller of a and b, plus ${k}`, body: [`return min(a, b) + ${k}`], f: (a: number, b: number) => Math.min(a, b) + k, input: (r) => [r.int(0, 50), r.int(0, 50)] }; } },
  { name: 'last_char', size: 20, make: (i) => { const k = i + 1; return { name: `last_${k}_chars`, params: ['s'], description: `returns the last ${k} characters of the string s (all of it if it is shorter)`, body: [`return s[-${k}:]`], f: (s: string) => s.slice(-k), input: (r) => [word(r, 0, 12)] }; } },
  { name: 'evens', size: 2, make: (i) => { const odd = i === 1; return { name: odd ? 'keep_odd' : 'keep_even', params: ['xs'], description: `returns the ${odd ? 'odd' : 'even'} numbers of the list xs, in order`, body: [`return [x for x in xs if x % 2 == ${odd ? 1 : 0}]`], f: (xs: number[]) => xs.filter((x) => x % 2 === (odd ? 1 : 0)), input: (r) => [ints(r, 0, 30)] }; } },
];

export const FAMILY_SIZES: Record<string, number> = Object.fromEntries(FAMILIES.map((f) => [f.name, f.size]));
export const GENERATED_TASK_COUNT = FAMILIES.reduce((s, f) => s + f.size, 0);

export const VISIBLE = 2;
export const HIDDEN = 5;

/** The function task with global index `index` (0 ≤ index < GENERATED_TASK_COUNT), its test inputs drawn from `seed`. */
export function functionTask(index: number, seed: number): FunctionTask {
  let i = ((index % GENERATED_TASK_COUNT) + GENERATED_TASK_COUNT) % GENERATED_TASK_COUNT;
  const fam = FAMILIES.find((f) => (i < f.size ? true : ((i -= f.size), false)))!;
  const d = fam.make(i);
  const r = Rng.derive('code-inputs', fam.name, i, seed);
  const inputs: PyValue[][] = [];
  const seen = new Set<string>();
  for (let tries = 0; inputs.length < VISIBLE + HIDDEN && tries < 200; tries++) {
    const args = d.input(r);
    const k = JSON.stringify(args);
    if (seen.has(k)) continue;
    seen.add(k);
    inputs.push(args);
  }
  const lines = d.body.length;
  return {
    key: `gen/${fam.name}/${i}`, name: d.name, params: d.params, description: d.description, body: d.body, inputs,
    expected: inputs.map((a) => d.f(...a)), difficulty: Math.min(3, lines),
  };
}

export const referenceOf = (t: Pick<FunctionTask, 'name' | 'params' | 'body'>): string =>
  `def ${t.name}(${t.params.join(', ')}):\n${t.body.map((l) => `    ${l}`).join('\n')}\n`;

export const assertOf = (name: string, args: PyValue[], expected: PyValue): string =>
  `assert ${name}(${args.map(pyLit).join(', ')}) == ${pyLit(expected)}`;
