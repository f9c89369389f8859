import { mkFloat, newObj, type Py, type PyObj } from '../../worlds/tau/pyvalue.ts';

/*
 * Parser for BFCL's prompting output format: a Python list of calls with keyword arguments whose values are
 * literals (str, int, float, True/False/None, lists, tuples → lists, dicts), e.g. `[get_weather(city='Paris'), f(x=1)]`.
 * Dotted names are allowed (module.func). Anything else throws with the offset.
 */
export function parsePythonCalls(src: string): PyObj[] {
  const p = new Reader(src);
  p.ws();
  const bracketed = p.eat('[');
  const calls: PyObj[] = [];
  p.ws();
  while (!p.done() && !(bracketed && p.peek() === ']')) {
    calls.push(p.call());
    p.ws();
    if (!p.eat(',')) break;
    p.ws();
  }
  if (bracketed && !p.eat(']')) p.fail('expected ]');
  p.ws();
  if (!p.done()) p.fail('trailing text');
  if (calls.length === 0) p.fail('no call');
  return calls;
}

class Reader {
  i = 0;
  constructor(readonly s: string) {}
  fail(msg: string): never { throw new Error(`${msg} at offset ${this.i}`); }
  done() { return this.i >= this.s.length; }
  peek() { return this.s[this.i]; }
  ws() { while (/\s/.test(this.s[this.i] ?? '')) this.i++; }
  eat(c: string) { if (this.s.startsWith(c, this.i)) { this.i += c.length; return true; } return false; }
  ident(): string {
    const m = /^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*/.exec(this.s.slice(this.i, this.i + 300));
    if (!m) this.fail('expected a name');
    this.i += m[0].length;
    return m[0];
  }
  call(): PyObj {
    const name = this.ident();
    this.ws();
    if (!this.eat('(')) this.fail(`expected ( after ${name}`);
    const args: Array<[string, Py]> = [];
    this.ws();
    while (!this.eat(')')) {
      const key = this.ident(); this.ws();
      if (!this.eat('=')) this.fail('expected keyword argument');
      args.push([key, this.value()]); this.ws();
      if (!this.eat(',') && this.peek() !== ')') this.fail('expected , or )');
      this.ws();
      if (this.done()) this.fail('unterminated call');
    }
    return newObj([[name, newObj(args)]]);
  }
  value(): Py {
    this.ws();
    const c = this.peek();
    if (c === '[' || c === '(') return this.seq(c === '[' ? ']' : ')');
    if (c === '{') return this.dict();
    if (c === '"' || c === "'") return this.str();
    for (const [word, v] of [['True', true], ['False', false], ['None', null]] as const) if (this.eat(word)) return v;
    const m = /^[-+]?(\d[\d_]*)?(\.\d*)?([eE][-+]?\d+)?/.exec(this.s.slice(this.i, this.i + 100));
    if (!m || !m[0] || m[0] === '-' || m[0] === '+') this.fail('expected a literal');
    this.i += m[0].length;
    const v = Number(m[0].replaceAll('_', ''));
    return m[2] || m[3] ? mkFloat(v) : v;
  }
  seq(close: string): Py[] {
    this.i++;
    const out: Py[] = [];
    this.ws();
    while (!this.eat(close)) {
      out.push(this.value()); this.ws();
      if (!this.eat(',') && this.peek() !== close) this.fail(`expected , or ${close}`);
      this.ws();
      if (this.done()) this.fail('unterminated sequence');
    }
    return out;
  }
  dict(): PyObj {
    this.i++;
    const entries: Array<[string, Py]> = [];
    this.ws();
    while (!this.eat('}')) {
      const k = this.value(); this.ws();
      if (typeof k !== 'string') this.fail('dict keys must be strings');
      if (!this.eat(':')) this.fail('expected :');
      entries.push([k as string, this.value()]); this.ws();
      if (!this.eat(',') && this.peek() !== '}') this.fail('expected , or }');
      this.ws();
      if (this.done()) this.fail('unterminated dict');
    }
    return newObj(entries);
  }
  str(): string {
    const q = this.s.startsWith(this.s[this.i].repeat(3), this.i) ? this.s[this.i].repeat(3) : this.s[this.i];
    this.i += q.length;
    let out = '';
    while (!this.s.startsWith(q, this.i)) {
      if (this.done()) this.fail('unterminated string');
      const ch = this.s[this.i++];
      if (ch !== '\\') { out += ch; continue; }
      const e = this.s[this.i++];
      const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0' };
      if (e in simple) out += simple[e];
      else if (e === 'x' || e === 'u') { const n = e === 'x' ? 2 : 4; out += String.fromCharCode(parseInt(this.s.slice(this.i, this.i + n), 16)); this.i += n; }
      else out += `\\${e}`;
    }
    this.i += q.length;
    return out;
  }
}
