import { describe, expect, it } from 'vitest';
import { canonicalJson, nodeKey, sha256 } from '../../runtime/engine/fingerprint.ts';
import { computeKeys } from '../../runtime/engine/keys.ts';
import { dag } from '../../runtime/engine/dag.ts';
import { double, numbers } from './fixtures.ts';

describe('canonical serialisation (golden hashes: changing these invalidates every cache)', () => {
  it('sorts keys, drops undefined, normalises -0', () => {
    expect(canonicalJson({ b: 1, a: [1, { d: undefined, c: 'x' }], z: -0 })).toBe('{"a":[1,{"c":"x"}],"b":1,"z":0}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson(JSON.parse('{ "b" : 2,\n "a":1 }')));
    expect(() => canonicalJson({ x: NaN })).toThrow(/non-finite/);
  });
  it('pins the golden hashes', () => {
    expect(sha256(canonicalJson({ lr: 0.001, steps: 10, names: ['a', 'b'] }))).toBe('00ed04daa7ef2463dd4876c44da8ac2e4bf766fc90d513a00c3d9ae578280234');
    const parts = { op: 'x', version: 1, code: { 'a.ts': 'h' }, params: { b: 1, a: 2 }, inputs: { i: 'k' }, env: {} };
    expect(nodeKey(parts)).toBe('3e6e5e84b50e9a9e23375179065ebf9f');
    expect(nodeKey({ ...parts, params: { a: 2, b: 1 } })).toBe('3e6e5e84b50e9a9e23375179065ebf9f');
    expect(nodeKey({ ...parts, version: 2 })).not.toBe('3e6e5e84b50e9a9e23375179065ebf9f');
  });
});

describe('node keys', () => {
  const build = (n: number, scale = 1) => dag('k', (b) => { b.node('d', double, {}, { xs: b.node('a', numbers, { n, scale }) }); });
  it('are stable across param order and rebuilds', () => {
    const k1 = computeKeys(build(3));
    const k2 = computeKeys(dag('k', (b) => { b.node('d', double, {}, { xs: b.node('a', numbers, { scale: 1, n: 3 }) }); }));
    expect(k1.get('a')!.key).toBe(k2.get('a')!.key);
    expect(k1.get('d')!.key).toBe(k2.get('d')!.key);
  });
  it('change with a param and propagate downstream through input keys', () => {
    const k1 = computeKeys(build(3));
    const k2 = computeKeys(build(4));
    expect(k2.get('a')!.key).not.toBe(k1.get('a')!.key);
    expect(k2.get('d')!.key).not.toBe(k1.get('d')!.key);
    expect(k2.get('d')!.parts.inputs.xs).toBe(k2.get('a')!.key);
  });
  it('default params count as given (a default equal to an explicit value gives the same key)', () => {
    expect(computeKeys(build(3, 1)).get('a')!.key).toBe(computeKeys(dag('k', (b) => { b.node('d', double, {}, { xs: b.node('a', numbers, { n: 3 }) }); })).get('a')!.key);
  });
  it('hash the operator module and its local imports, not packages', () => {
    const parts = computeKeys(build(3)).get('a')!.parts;
    expect(Object.keys(parts.code)).toEqual(expect.arrayContaining(['test/engine/fixtures.ts', 'runtime/engine/operator.ts']));
    expect(Object.keys(parts.code).some((f) => f.includes('node_modules'))).toBe(false);
  });
});
