import { floatRepr, mkFloat, round2, num } from './pyvalue.ts';

/*
 * τ-bench's `calculate` tool: Python eval of an arithmetic expression over the characters `0123456789+-*()/. `,
 * then float(), round(…, 2), str(). Python semantics kept: ints are exact (BigInt), `/` is true division,
 * `//` floors, `**` is right-associative and binds tighter than a unary minus on its left, int ** negative int is
 * a float. Error texts are Python 3.11's for the common cases (division by zero, invalid syntax).
 */
type Val = { int: bigint } | { float: number };
class PyError extends Error {}

export function calculate(expression: string): string {
  if (![...expression].every((c) => '0123456789+-*/(). '.includes(c))) return 'Error: invalid characters in expression';
  try {
    const v = new Parser(expression).parse();
    const f = 'int' in v ? toFloat(v.int) : v.float;
    return floatRepr(num(round2(mkFloat(f))));
  } catch (e) {
    return `Error: ${(e as Error).message}`;
  }
}

function toFloat(i: bigint): number {
  const f = Number(i);
  if (!Number.isFinite(f)) throw new PyError('int too large to convert to float');
  return f;
}

const isZero = (v: Val) => ('int' in v ? v.int === 0n : v.float === 0);
const asF = (v: Val) => ('int' in v ? toFloat(v.int) : v.float);

function binary(op: string, a: Val, b: Val): Val {
  if ('int' in a && 'int' in b) {
    switch (op) {
      case '+': return { int: a.int + b.int };
      case '-': return { int: a.int - b.int };
      case '*': return { int: a.int * b.int };
      case '/': if (b.int === 0n) throw new PyError('division by zero'); return { float: Number(a.int) / Number(b.int) };
      case '//': {
        if (b.int === 0n) throw new PyError('integer division or modulo by zero');
        const q = a.int / b.int;
        return { int: (a.int % b.int !== 0n && (a.int < 0n) !== (b.int < 0n)) ? q - 1n : q };
      }
      case '**':
        if (b.int < 0n) { if (a.int === 0n) throw new PyError('0.0 cannot be raised to a negative power'); return { float: Number(a.int) ** Number(b.int) }; }
        if (b.int > 100_000n && (a.int > 1n || a.int < -1n)) throw new PyError('exponent too large');
        return { int: a.int ** b.int };
    }
  }
  const x = asF(a), y = asF(b);
  switch (op) {
    case '+': return { float: x + y };
    case '-': return { float: x - y };
    case '*': return { float: x * y };
    case '/': if (isZero(b)) throw new PyError('float division by zero'); return { float: x / y };
    case '//': if (isZero(b)) throw new PyError('float floor division by zero'); return { float: Math.floor(x / y) };
    default: {
      if (x === 0 && y < 0) throw new PyError('0.0 cannot be raised to a negative power');
      const r = x ** y;
      if (!Number.isFinite(r) && Number.isFinite(x) && Number.isFinite(y)) throw new PyError("(34, 'Numerical result out of range')");
      return { float: r };
    }
  }
}

class Parser {
  private toks: string[];
  private k = 0;
  constructor(src: string) {
    this.toks = src.match(/\*\*|\/\/|\d*\.\d*|\d+|[-+*/()]|\S/g) ?? [];
    if (this.toks.length === 0) throw new PyError('invalid syntax (<string>, line 0)');
  }
  parse(): Val {
    const v = this.sum();
    if (this.k < this.toks.length) throw new PyError('invalid syntax (<string>, line 1)');
    return v;
  }
  private peek() { return this.toks[this.k]; }
  private sum(): Val {
    let v = this.product();
    while (this.peek() === '+' || this.peek() === '-') { const op = this.toks[this.k++]; v = binary(op, v, this.product()); }
    return v;
  }
  private product(): Val {
    let v = this.unary();
    while (this.peek() === '*' || this.peek() === '/' || this.peek() === '//') { const op = this.toks[this.k++]; v = binary(op, v, this.unary()); }
    return v;
  }
  private unary(): Val {
    const t = this.peek();
    if (t === '-' || t === '+') {
      this.k++;
      const v = this.unary();
      if (t === '+') return v;
      return 'int' in v ? { int: -v.int } : { float: -v.float };
    }
    return this.power();
  }
  private power(): Val {
    const base = this.atom();
    if (this.peek() === '**') { this.k++; return binary('**', base, this.unary()); }
    return base;
  }
  private atom(): Val {
    const t = this.toks[this.k++];
    if (t === undefined) throw new PyError('invalid syntax (<string>, line 1)');
    if (t === '(') {
      const v = this.sum();
      if (this.toks[this.k++] !== ')') throw new PyError("'(' was never closed (<string>, line 1)");
      return v;
    }
    if (/^\d+$/.test(t)) {
      if (/^0\d/.test(t) && /[1-9]/.test(t)) throw new PyError('leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers (<string>, line 1)');
      return { int: BigInt(t) };
    }
    if (/^(\d+\.\d*|\.\d+)$/.test(t)) return { float: Number(t) };
    throw new PyError('invalid syntax (<string>, line 1)');
  }
}
