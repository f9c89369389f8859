/*
 * Python-faithful JSON values. τ-bench's observations are Python `json.dumps` strings and its reward compares a
 * SHA-256 of Python `str()` of the database, so two Python distinctions JavaScript loses must be kept:
 *  - int vs float: `50` and `50.0` differ. An integral float is a PyFloat; a non-integral number is a float
 *    anyway; any other JS number is an int.
 *  - key order of objects whose keys look like array indices (product and item ids): JS reorders such keys, so
 *    the parser records the file order under the KEYS symbol and every reader goes through pyKeys().
 */
export class PyFloat {
  constructor(readonly value: number) {}
}
export type Py = null | boolean | number | PyFloat | string | Py[] | PyObj;
export interface PyObj { [key: string]: Py }

export const KEYS = Symbol('pyKeyOrder');
const INDEX_LIKE = /^(0|[1-9]\d{0,9})$/;

export const isFloat = (x: unknown): boolean => x instanceof PyFloat || (typeof x === 'number' && !Number.isInteger(x));
export const isNum = (x: unknown): x is number | PyFloat => typeof x === 'number' || x instanceof PyFloat;
export const num = (x: unknown): number => (x instanceof PyFloat ? x.value : (x as number));
export const mkFloat = (v: number): number | PyFloat => (Number.isInteger(v) ? new PyFloat(v) : v);
const mk = (v: number, float: boolean) => (float ? mkFloat(v) : v);
export const pyAdd = (a: Py, b: Py) => mk(num(a) + num(b), isFloat(a) || isFloat(b));
export const pySub = (a: Py, b: Py) => mk(num(a) - num(b), isFloat(a) || isFloat(b));
export const pyMul = (a: Py, b: Py) => mk(num(a) * num(b), isFloat(a) || isFloat(b));
export const pyNeg = (a: Py) => mk(-num(a), isFloat(a));
export const pyAbs = (a: Py) => mk(Math.abs(num(a)), isFloat(a));

export function isObj(x: unknown): x is PyObj {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof PyFloat);
}
export function pyKeys(o: PyObj): string[] {
  return (o as { [KEYS]?: string[] })[KEYS] ?? Object.keys(o);
}
/** Adds or overwrites a key, keeping the recorded order for index-like objects. */
export function pySet(o: PyObj, key: string, value: Py): void {
  const order = (o as { [KEYS]?: string[] })[KEYS];
  if (order && !(key in o)) order.push(key);
  o[key] = value;
}
export function newObj(entries: Array<[string, Py]>): PyObj {
  const o: PyObj = {};
  if (entries.some(([k]) => INDEX_LIKE.test(k))) Object.defineProperty(o, KEYS, { value: [], enumerable: false });
  for (const [k, v] of entries) pySet(o, k, v);
  return o;
}

/** Python round(x, 2): the exact binary value, ties (x·8 an odd integer) to even; round of an int stays an int. */
export function round2(x: Py): number | PyFloat {
  if (!isFloat(x)) return x as number;
  const v = num(x);
  if (!Number.isFinite(v) || Math.abs(v) >= 1e15) return mkFloat(v);
  let r = Number(Math.abs(v).toFixed(2)) * Math.sign(v);
  // Exact tie at the third decimal (|v|·8 an odd integer): Python rounds half to even, toFixed half up. Computed
  // in integers: 200·|v| = 25·m is odd, so floor(100·|v|) = (25·m − 1)/2. Past 2^53/100 the doubles are too far
  // apart for the two rules to give different results.
  const a = Math.abs(v);
  if (a < 2 ** 53 / 100 && Number.isInteger(a * 8) && !Number.isInteger(a * 4)) {
    const lo = (25n * BigInt(a * 8) - 1n) / 2n;
    r = Math.sign(v) * (Number(lo % 2n === 0n ? lo : lo + 1n) / 100);
  }
  return mkFloat(r); // keeps -0.0 like Python
}

export function deepClone<T extends Py>(v: T): T {
  if (Array.isArray(v)) return v.map((x) => deepClone(x)) as T;
  if (isObj(v)) return newObj(pyKeys(v).map((k) => [k, deepClone(v[k])])) as T;
  return v;
}

/* ---------- parsing (JSON text → Py) ---------- */

/** JSON.parse keeping `1.0` a float and the key order of index-like objects. Errors name the offset. */
export function parsePyJson(text: string, where = 'JSON'): Py {
  let i = 0;
  const fail = (msg: string): never => { throw new Error(`${where}: ${msg} at offset ${i}`); };
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  const value = (): Py => {
    ws();
    const c = text[i];
    if (c === '{') return object();
    if (c === '[') return array();
    if (c === '"') return string();
    if (c === 't' && text.startsWith('true', i)) { i += 4; return true; }
    if (c === 'f' && text.startsWith('false', i)) { i += 5; return false; }
    if (c === 'n' && text.startsWith('null', i)) { i += 4; return null; }
    if (c === 'N' && text.startsWith('NaN', i)) { i += 3; return NaN; }
    if (c === 'I' && text.startsWith('Infinity', i)) { i += 8; return Infinity; }
    if (c === '-' && text.startsWith('-Infinity', i)) { i += 9; return -Infinity; }
    return number();
  };
  const number = (): Py => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) return fail(`unexpected ${text[i] === undefined ? 'end of input' : JSON.stringify(text[i])}`);
    i += m[0].length;
    const v = Number(m[0]);
    return m[2] || m[3] ? mkFloat(v) : v;
  };
  const string = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    try { return JSON.parse(text.slice(start, i)) as string; } catch { return fail('bad string escape'); }
  };
  const array = (): Py[] => {
    i++; ws();
    const out: Py[] = [];
    if (text[i] === ']') { i++; return out; }
    for (;;) {
      out.push(value()); ws();
      if (text[i] === ',') { i++; continue; }
      if (text[i] === ']') { i++; return out; }
      fail('expected , or ]');
    }
  };
  const object = (): PyObj => {
    i++; ws();
    const entries: Array<[string, Py]> = [];
    if (text[i] === '}') { i++; return newObj(entries); }
    for (;;) {
      ws();
      if (text[i] !== '"') fail('expected a string key');
      const k = string(); ws();
      if (text[i] !== ':') fail('expected :');
      i++;
      entries.push([k, value()]); ws();
      if (text[i] === ',') { i++; continue; }
      if (text[i] === '}') { i++; return newObj(entries); }
      fail('expected , or }');
    }
  };
  const v = value(); ws();
  if (i < text.length) fail('trailing characters');
  return v;
}

/* ---------- Python formatting ---------- */

/** Python repr(float): shortest round-trip digits; exponent form when exp < -4 or exp >= 16. */
export function floatRepr(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const [mant, expS] = v.toExponential().split('e');
  const exp = Number(expS);
  if (exp < -4 || exp >= 16) return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  const s = String(v); // JS uses positional notation in this range
  return s.includes('.') ? s : `${s}.0`;
}

export function numRepr(x: number | PyFloat): string {
  return isFloat(x) ? floatRepr(num(x)) : String(x);
}

function jsonString(s: string): string {
  let out = '"';
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c >= 0x20 && c <= 0x7e) out += s[k];
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else out += `\\u${c.toString(16).padStart(4, '0')}`;
  }
  return `${out}"`;
}

/** Python json.dumps(v) with default settings (ensure_ascii, ", " and ": " separators, stored key order). */
export function pyDumps(v: Py): string {
  if (v === null) return 'null';
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (typeof v === 'string') return jsonString(v);
  if (isNum(v)) {
    const n = num(v);
    if (Number.isNaN(n)) return 'NaN';
    if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
    return numRepr(v);
  }
  if (Array.isArray(v)) return `[${v.map(pyDumps).join(', ')}]`;
  return `{${pyKeys(v).map((k) => `${jsonString(k)}: ${pyDumps(v[k])}`).join(', ')}}`;
}

const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/** Python repr(str). */
export function strRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0x7f || ch === ' ' || !NON_PRINTABLE.test(ch)) out += ch;
    else if (cp < 0x100) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return out + quote;
}

const tuple = (items: string[]) => (items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`);
const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Python str(to_hashable(v)) as τ-bench computes it: objects become tuples of (key, value) sorted by key, lists
 * become tuples. `cache` memoises the text of unchanged objects across calls (records shared between episodes).
 */
export function hashableRepr(v: Py, cache?: WeakMap<object, string>): string {
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return strRepr(v);
  if (isNum(v)) return numRepr(v);
  const hit = cache?.get(v);
  if (hit !== undefined) return hit;
  const text = Array.isArray(v)
    ? tuple(v.map((x) => hashableRepr(x, cache)))
    : tuple(pyKeys(v).slice().sort(byCodePoint).map((k) => `(${strRepr(k)}, ${hashableRepr(v[k], cache)})`));
  cache?.set(v, text);
  return text;
}
export { tuple as pyTuple, byCodePoint };
