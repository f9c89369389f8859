import { isObj, mkFloat, pyKeys, type Py, type PyObj } from '../../worlds/tau/pyvalue.ts';
import { pyEq, pyIn, pyRepr, pyType, type PyTypeName } from './pytypes.ts';

/*
 * BFCL's AST checker (gorilla berkeley-function-call-leaderboard/bfcl_eval/eval_checker/ast_eval/ast_checker.py,
 * snapshot 6ea5797), Python language only, re-implemented with the same order of checks, the same error types
 * and its quirks kept on purpose, since published scores depend on them:
 *  - strings are compared after removing spaces and , . / - _ * ^, lower-casing and turning ' into ";
 *  - a value whose type equals the possible answer's type (not the doc's) is accepted as a "variable";
 *  - the nested (array item) type check passes at once when a possible answer is "" (optional);
 *  - a "" possible value of a list parameter standardises to [] (so an empty list matches);
 *  - parallel matching is greedy: each expected call takes the first unmatched model call that fits.
 */
export interface CheckResult { valid: boolean; error: string[]; error_type: string }
export type FuncDoc = { name: string; parameters: { properties?: PyObj; required?: string[] } } & PyObj;
export type Calls = PyObj[]; // [{func_name: {param: value}}]

const TYPE: Record<string, PyTypeName> = { string: 'str', integer: 'int', float: 'float', boolean: 'bool', array: 'list', tuple: 'list', dict: 'dict', any: 'str' };
const ok = (): CheckResult => ({ valid: true, error: [], error_type: '' });
const bad = (error_type: string, ...error: string[]): CheckResult => ({ valid: false, error, error_type });

export const standardize = (s: string) => s.replace(/[ ,./\-_*^]/g, '').toLowerCase().replaceAll("'", '"');
const stdIfStr = (v: Py) => (typeof v === 'string' ? standardize(v) : v);
/** BFCL's convert_func_name for OpenAI-style tool names: dots are not allowed, so they become underscores. */
export const toolName = (name: string) => name.replaceAll('.', '_');

function firstAnswerType(answers: Py[]): PyTypeName | null {
  for (const a of answers) if (a !== '') return pyType(a);
  return null;
}

function typeCheck(param: string, value: Py, answers: Py[], desc: string, expected: PyTypeName, nested: PyTypeName | null): CheckResult & { isVariable: boolean } {
  const aType = firstAnswerType(answers);
  const isVariable = aType !== null && aType !== expected;
  let nestedFailed = false;
  if (pyType(value) === expected) {
    if (nested === null) return { ...ok(), isVariable };
    for (const item of answers) {
      let flag = true;
      if (Array.isArray(item)) {
        for (const v of value as Py[]) if (!typeCheck(param, v, item, nested, nested, null).valid) { flag = false; break; }
      }
      if (flag) return { ...ok(), isVariable };
    }
    nestedFailed = true;
  }
  if (aType !== null && pyType(value) === aType) {
    // upstream returns the (already failed) nested result here, marked as a variable
    return nestedFailed ? { ...bad('type_error:nested', `Nested type checking failed for parameter ${pyRepr(param)}.`), isVariable: true } : { ...ok(), isVariable: true };
  }
  const msg = `Incorrect type for parameter ${pyRepr(param)}. Expected type ${desc}, got ${pyType(value)}. Parameter value: ${pyRepr(value)}.`;
  return { ...bad('type_error:simple', msg), isVariable: false }; // upstream overwrites the nested error type here
}

function stringCheck(param: string, value: string, answers: Py[]): CheckResult {
  const std = answers.filter((a) => typeof a === 'string').map((a) => standardize(a as string));
  if (std.includes(standardize(value))) return ok();
  return bad('value_error:string', `Invalid value for parameter ${pyRepr(param)}: ${pyRepr(value)}. Expected one of ${pyRepr(answers)}. Case insensitive.`);
}

function listCheck(param: string, value: Py[], answers: Py[]): CheckResult {
  const std = value.map(stdIfStr);
  // iterating "" in Python yields nothing, so an optional "" becomes []
  const stdAnswers = answers.map((a) => (Array.isArray(a) ? a.map(stdIfStr) : typeof a === 'string' ? [...a].map(stdIfStr) : a));
  if (pyIn(std, stdAnswers)) return ok();
  return bad('value_error:list/tuple', `Invalid value for parameter ${pyRepr(param)}: ${pyRepr(value)}. Expected one of ${pyRepr(answers)}.`);
}

function dictCheck(value: PyObj, answers: Py[]): CheckResult {
  let result = bad('dict_checker:unclear');
  for (const answer of answers) {
    if (answer === '') continue;
    const pa = answer as PyObj;
    result = bad('dict_checker:unclear');
    let flag = true;
    for (const key of pyKeys(value)) {
      if (!Object.hasOwn(pa, key)) { result = bad('value_error:dict_key', `Unexpected dict key parameter: '${key}'.`); flag = false; break; }
      const std = (pa[key] as Py[]).map(stdIfStr);
      if (!pyIn(stdIfStr(value[key]), std)) {
        result = bad('value_error:dict_value', `Invalid value for parameter ${pyRepr(key)}: ${pyRepr(value[key])}. Expected one of ${pyRepr(std)}.`);
        flag = false; break;
      }
    }
    for (const key of pyKeys(pa)) {
      if (!Object.hasOwn(value, key) && !(pa[key] as Py[]).includes('')) { result = bad('value_error:dict_key', `Missing dict key parameter: '${key}'.`); flag = false; break; }
    }
    if (flag) return ok();
  }
  return result;
}

function listDictCheck(value: Py[], answers: Py[]): CheckResult {
  let result = bad('list_dict_checker:unclear');
  for (const answer of answers) {
    const expected = typeof answer === 'string' ? [...answer] : (answer as Py[]);
    if (value.length !== expected.length) { result = bad('value_error:list_dict_count', 'Wrong number of dictionaries in the list.'); continue; }
    let flag = true;
    for (let i = 0; i < value.length; i++) {
      result = isObj(value[i]) ? dictCheck(value[i] as PyObj, [expected[i]]) : bad('value_error:dict_value', `Element ${i} is not a dict.`);
      if (!result.valid) { flag = false; break; }
    }
    if (flag) return ok();
  }
  return result;
}

/** Checks one parameter's value; null when it is fine. */
function paramCheck(param: string, value: Py, details: PyObj, answers: Py[]): CheckResult | null {
  const desc = String(details.type);
  const expected = TYPE[desc];
  if (!expected) return bad('type_error:unknown_doc_type', `Unknown BFCL type ${pyRepr(desc)} for parameter ${pyRepr(param)}.`);
  const nestedDesc = desc === 'array' || desc === 'tuple' ? String((details.items as PyObj | undefined)?.type ?? '') : '';
  const nested = nestedDesc ? TYPE[nestedDesc] ?? null : null;
  if (desc === 'float' && pyType(value) === 'int') value = mkFloat(value as number); // Python auto int → float
  const t = typeCheck(param, value, answers, desc, expected, nested);
  if (!t.valid) return t;
  if (!t.isVariable) {
    if (expected === 'dict') { const r = dictCheck(value as PyObj, answers); return r.valid ? null : r; }
    if (expected === 'list' && nested === 'dict') { const r = listDictCheck(value as Py[], answers); return r.valid ? null : r; }
    if (expected === 'str') { const r = stringCheck(param, value as string, answers); return r.valid ? null : r; }
    if (expected === 'list') { const r = listCheck(param, value as Py[], answers); return r.valid ? null : r; }
  }
  if (!pyIn(value, answers)) return bad('value_error:others', `Invalid value for parameter ${pyRepr(param)}: ${pyRepr(value)}. Expected one of ${pyRepr(answers)}.`);
  return null;
}

export function simpleCheck(doc: FuncDoc, call: PyObj, expected: PyObj): CheckResult {
  const answer = expected[pyKeys(expected)[0]] as PyObj;
  const name = toolName(doc.name);
  const props = (doc.parameters.properties ?? {}) as PyObj;
  if (!Object.hasOwn(call, name)) return bad('simple_function_checker:wrong_func_name', `Function name ${pyRepr(name)} not found in model output.`);
  const params = call[name];
  if (!isObj(params)) return bad('simple_function_checker:wrong_arguments_format', `Arguments of ${pyRepr(name)} are not an object.`);
  for (const p of doc.parameters.required ?? []) {
    if (!Object.hasOwn(params, p)) return bad('simple_function_checker:missing_required', `Missing required parameter: ${pyRepr(p)}.`);
  }
  for (const p of pyKeys(params)) {
    if (!Object.hasOwn(props, p) || !Object.hasOwn(answer, p)) return bad('simple_function_checker:unexpected_param', `Unexpected parameter: ${pyRepr(p)}.`);
    const r = paramCheck(p, params[p], props[p] as PyObj, answer[p] as Py[]);
    if (r) return r;
  }
  for (const p of pyKeys(answer)) {
    if (!Object.hasOwn(params, p) && !(answer[p] as Py[]).includes('')) {
      return bad('simple_function_checker:missing_optional', `Optional parameter ${pyRepr(p)} not provided and not marked as optional.`);
    }
  }
  return ok();
}

const findDoc = (docs: FuncDoc[], name: string) => docs.find((d) => d.name === name);

export function parallelCheck(docs: FuncDoc[], calls: Calls, expected: PyObj[]): CheckResult {
  if (calls.length !== expected.length) return bad('parallel_function_checker_no_order:wrong_count', 'Wrong number of functions.');
  const matched = new Set<number>();
  for (let i = 0; i < expected.length; i++) {
    const doc = findDoc(docs, pyKeys(expected[i])[0]);
    if (!doc) return bad('checker:missing_doc', `No function doc for expected call ${pyKeys(expected[i])[0]}.`);
    const errors: string[] = [];
    let found = false;
    for (let j = 0; j < calls.length && !found; j++) {
      if (matched.has(j)) continue;
      const r = simpleCheck(doc, calls[j], expected[i]);
      if (r.valid) { matched.add(j); found = true; } else errors.push(`model call ${j}: ${r.error_type}: ${r.error.join(' ')}`);
    }
    if (!found) {
      const left = calls.map((_, j) => j).filter((j) => !matched.has(j));
      return bad('parallel_function_checker_no_order:cannot_find_match', `Could not find a matching function among index [${left.join(', ')}] of model output for index ${i} of possible answers.`, ...errors);
    }
  }
  return ok();
}

/** ast_checker: dispatch on the category name as upstream does ("parallel" first, then "multiple"). */
export function astCheck(category: string, docs: FuncDoc[], calls: Calls, expected: PyObj[]): CheckResult {
  if (category.includes('parallel')) return parallelCheck(docs, calls, expected);
  if (category.includes('multiple')) {
    if (calls.length !== expected.length) return bad('multiple_function_checker:wrong_count', 'Wrong number of functions.');
    const doc = findDoc(docs, pyKeys(expected[0])[0]);
    if (!doc) return bad('checker:missing_doc', `No function doc for expected call ${pyKeys(expected[0])[0]}.`);
    return simpleCheck(doc, calls[0], expected[0]);
  }
  if (calls.length !== 1) return bad('simple_function_checker:wrong_count', 'Wrong number of functions.');
  return simpleCheck(docs[0], calls[0], expected[0]);
}
