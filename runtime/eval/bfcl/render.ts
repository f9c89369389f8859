import type { Message } from '../../../schemas/message.ts';
import { isObj, newObj, pyDumps, pyKeys, type Py, type PyObj } from '../../worlds/tau/pyvalue.ts';
import { toolName, type FuncDoc } from './checker.ts';
import type { BfclEntry } from './data.ts';

/*
 * The possible answer rendered as a model's native tool calls: for every parameter the first acceptable value
 * ("" = may be omitted → omitted, unless the doc requires it: then ""), dict answers key by key, lists of dicts element by element. Arguments are
 * written with Python's json.dumps so 1.0 stays a float. Scoring these must give 100% (the checker's self-test),
 * and an oracle ChatPolicy built on it is the smoke test of the eval path.
 */
const first = (values: Py[]): Py | undefined => values.find((v) => v !== '');

function renderDict(answer: PyObj): PyObj {
  const out: Array<[string, Py]> = [];
  for (const k of pyKeys(answer)) {
    const v = first(answer[k] as Py[]);
    if (v !== undefined) out.push([k, v]);
  }
  return newObj(out);
}

function renderValue(doc: PyObj | undefined, values: Py[]): Py | undefined {
  const v = first(values);
  if (v === undefined) return undefined;
  const type = doc?.type, itemType = isObj(doc?.items as Py) ? (doc!.items as PyObj).type : undefined;
  if (type === 'dict' && isObj(v)) return renderDict(v);
  if (type === 'array' && itemType === 'dict' && Array.isArray(v)) return v.map((d) => (isObj(d) ? renderDict(d) : d));
  return v;
}

export function renderAnswer(entry: BfclEntry): Message {
  const calls = (entry.answers ?? []).map((call, i) => {
    const name = pyKeys(call)[0];
    const doc = entry.functions.find((f: FuncDoc) => f.name === name);
    const props = (doc?.parameters.properties ?? {}) as PyObj;
    const params = call[name] as PyObj;
    const args: Array<[string, Py]> = [];
    const required = doc?.parameters.required ?? [];
    for (const p of pyKeys(params)) {
      const v = renderValue(props[p] as PyObj | undefined, params[p] as Py[]);
      // A required parameter whose only acceptable value is "" is satisfied only by "" (a list: [], since the
      // checker turns "" into [] for list parameters).
      if (v !== undefined) args.push([p, v]);
      else if (required.includes(p)) args.push([p, (props[p] as PyObj | undefined)?.type === 'array' ? [] : '']);
    }
    const obj = newObj(args);
    return { id: `call_${i}`, name: toolName(name), arguments: JSON.parse(pyDumps(obj)) as Record<string, unknown>, raw: pyDumps(obj) };
  });
  return { role: 'assistant', content: '', tool_calls: calls, tool_call_id: null, name: null };
}
