import { floatRepr, isFloat, isObj, num, pyKeys, strRepr, PyFloat, type Py, type PyObj } from '../../worlds/tau/pyvalue.ts';

/* Python value semantics the BFCL checker relies on: type(), ==, `in`, repr(). */

export type PyTypeName = 'str' | 'int' | 'float' | 'bool' | 'list' | 'dict' | 'NoneType';

export function pyType(v: Py): PyTypeName {
  if (v === null) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'str';
  if (v instanceof PyFloat || typeof v === 'number') return isFloat(v) ? 'float' : 'int';
  if (Array.isArray(v)) return 'list';
  return 'dict';
}

const numeric = (v: Py) => (typeof v === 'boolean' ? Number(v) : num(v));
const isNumeric = (v: Py) => typeof v === 'boolean' || typeof v === 'number' || v instanceof PyFloat;

/** Python ==: True == 1 == 1.0, lists element-wise, dicts by key set and values. */
export function pyEq(a: Py, b: Py): boolean {
  if (isNumeric(a) && isNumeric(b)) return numeric(a) === numeric(b);
  if (typeof a === 'string' || typeof b === 'string' || a === null || b === null) return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => pyEq(x, b[i]));
  }
  if (isObj(a) && isObj(b)) {
    const ka = pyKeys(a), kb = pyKeys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && pyEq(a[k], b[k]));
  }
  return false;
}

export const pyIn = (v: Py, list: Py[]) => list.some((x) => pyEq(v, x));

/** Python repr() (dicts in stored order, as Python prints them). */
export function pyRepr(v: Py): string {
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return strRepr(v);
  if (typeof v === 'number' || v instanceof PyFloat) return isFloat(v) ? floatRepr(num(v)) : String(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  return `{${pyKeys(v as PyObj).map((k) => `${strRepr(k)}: ${pyRepr((v as PyObj)[k])}`).join(', ')}}`;
}
