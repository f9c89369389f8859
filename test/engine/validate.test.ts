import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dag, validateDag } from '../../runtime/engine/dag.ts';
import { operator, table } from '../../runtime/engine/operator.ts';
import { double, makeModel, numbers, texts, total } from './fixtures.ts';

describe('DAG validation reports every problem at once', () => {
  it('duplicate ids, missing and unknown inputs, bad params, kind and schema mismatches', () => {
    const d = dag('bad', (b) => {
      const a = b.node('a', numbers, { n: -1 });
      b.node('a', numbers, { n: 1 });
      b.node('m', makeModel);
      b.node('t', texts);
      b.node('no_input', double, {}, {} as never);
      b.node('wrong_kind', double, {}, { xs: b.ref('m') });
      b.node('wrong_schema', double, {}, { xs: b.ref('t') });
      b.node('extra', total, {}, { xs: a, bogus: a } as never);
      b.node('dangling', double, {}, { xs: b.ref('nope') });
      b.node('Bad-Id', numbers, { n: 1 });
    });
    const problems = validateDag(d);
    const text = problems.join('\n');
    expect(text).toContain("node 'a' (test-numbers): param n: Too small");
    expect(text).toContain("node 'a' is declared twice");
    expect(text).toContain("node 'no_input': input 'xs' (table(Num)) is not wired");
    expect(text).toContain("node 'wrong_kind' input 'xs' expects table(Num) but node 'm' (test-model) produces model()");
    expect(text).toContain("node 'wrong_schema' input 'xs': column 'i' is required but node 't' (test-texts) does not produce it");
    expect(text).toContain("node 'extra': unknown input 'bogus'; test-total takes: xs");
    expect(text).toContain("node 'dangling': input 'xs' refers to 'nope', which is not a node of this DAG");
    expect(text).toContain("node 'Bad-Id': ids are lower_snake_case");
    expect(problems.length).toBeGreaterThanOrEqual(9);
  });

  it('reports a cycle with its path', () => {
    const d = dag('cyc', (b) => {
      b.node('x', double, {}, { xs: b.ref('z') });
      b.node('y', double, {}, { xs: b.ref('x') });
      b.node('z', double, {}, { xs: b.ref('y') });
    });
    expect(validateDag(d).join('\n')).toMatch(/cycle: (x|y|z) → .* → (x|y|z)/);
  });

  it('flags a column whose type differs between producer and consumer', () => {
    const Floaty = z.object({ i: z.number(), v: z.number() });
    const floats = operator({ name: 'test-floats', version: 1, params: z.object({}), inputs: {}, output: table(Floaty), async run() {} });
    const d = dag('types', (b) => { b.node('double', double, {}, { xs: b.node('f', floats) }); });
    expect(validateDag(d)).toEqual(["node 'double' input 'xs': column 'i' is INTEGER in the input schema but DOUBLE in node 'f''s output"]);
  });

  it('accepts a well-formed DAG', () => {
    const d = dag('ok', (b) => { const a = b.node('a', numbers, { n: 3 }); b.node('t', total, {}, { xs: b.node('d', double, {}, { xs: a }) }); });
    expect(validateDag(d)).toEqual([]);
  });

  it('refuses a malformed operator at declaration with every problem', () => {
    expect(() => operator({ name: 'Bad Name', version: 0, params: {} as never, inputs: {}, output: { kind: 'nope' } as never, run: undefined as never }))
      .toThrow(/kebab-case[\s\S]*positive integer[\s\S]*z\.object[\s\S]*output must be[\s\S]*run must be/);
  });
});
