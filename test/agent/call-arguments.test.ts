/*
 * One definition of a tool call's arguments: the parser (what the agent loop runs) and callArguments (what the
 * τ-bench and BFCL evaluators read, with Python number semantics) agree on every body, including one with no
 * "arguments" key — which used to hand the whole body, `name` included, to the tool as its arguments.
 */
import { describe, expect, it } from 'vitest';
import { argumentsOf, callArguments, parseAssistant } from '../../runtime/agent/parse.ts';
import { toPlain } from '../../runtime/worlds/tau/data.ts';

const bodies = [
  '{"name": "f"}',
  '{"name": "f", "arguments": {}}',
  '{"name": "f", "arguments": {"x": 1, "y": "a"}}',
  '{"name": "f", "arguments": "{\\"x\\": 2}"}',
  '{"name": "f", "parameters": {"x": 3}}',
  '{"name": "f", "arguments": null}',
];

describe('tool call arguments', () => {
  it.each(bodies)('parser and reader agree on %s', (body) => {
    const { tool_calls: [call], errors } = parseAssistant(`<tool_call>\n${body}\n</tool_call>`);
    expect(errors).toEqual([]);
    const read = callArguments(call);
    expect(read.ok).toBe(true);
    expect(read.ok && toPlain(read.args)).toEqual(call.arguments);
  });

  it('a call without "arguments" has none: {} from both, never its own name', () => {
    const { tool_calls: [call] } = parseAssistant('<tool_call>\n{"name": "get_user_details"}\n</tool_call>');
    expect(call.arguments).toEqual({});
    expect(callArguments(call)).toEqual({ ok: true, args: {} });
  });

  it('an OpenAI-style arguments string is read as the arguments, floats kept', () => {
    const r = callArguments({ id: 'c', name: 'f', arguments: { x: 1 }, raw: '{"x": 1.0}' });
    expect(r.ok && JSON.stringify(toPlain(r.args))).toBe('{"x":1}');
    expect(argumentsOf({ name: 'f' })).toEqual({});
  });

  it('arguments nested deeper than a tool could take are a parse error, not a stack overflow later', () => {
    const deep = '{"a": '.repeat(5000) + '1' + '}'.repeat(5000);
    const { tool_calls: [call], errors } = parseAssistant(`<tool_call>\n{"name": "f", "arguments": ${deep}}\n</tool_call>`);
    expect(call.arguments).toBeNull();
    expect(errors.map((e) => e.kind)).toEqual(['bad_arguments']);
  });
});
