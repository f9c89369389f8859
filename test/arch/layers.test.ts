/* The architecture as a test: the layer order of scripts/check-layers.ts holds for the whole tree. */
import { describe, expect, it } from 'vitest';
import { check, findCycles, layerOf, LAYERS } from '../../scripts/check-layers.ts';

describe('layers', () => {
  it('no upward import, no operator importing another operator, no TS or Python import cycle', () => {
    expect(check()).toEqual([]);
  });

  it('knows the order: schemas at the bottom, dags on top, tests outside', () => {
    expect(layerOf('schemas/task.ts')).toBe(LAYERS.length - 1);
    expect(layerOf('dags/klear.ts')).toBe(0);
    expect(layerOf('runtime/agent/loop.ts')).toBeLessThan(layerOf('runtime/worlds/base.ts'));
    expect(layerOf('runtime/engine/dag.ts')).toBeLessThan(layerOf('storage/store.ts'));
    expect(layerOf('test/arch/layers.test.ts')).toBe(-1);
  });

  it('finds a cycle and leaves a DAG alone', () => {
    const cyclic = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]);
    expect(findCycles(cyclic)).toEqual([['a', 'b', 'c', 'a']]);
    expect(findCycles(new Map([['a', ['b']], ['b', []], ['c', ['a', 'b']]]))).toEqual([]);
  });
});
