/*
 * Tools and records are looked up by own keys only: a model that names a tool or an id "__proto__",
 * "constructor" or "toString" gets the world's ordinary unknown-tool / not-found answer — never an inherited
 * Object.prototype member treated as a tool or a record (which threw, or wrote onto Object.prototype).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { getWorld, makeTasks, WORLD_NAMES, worldDef } from '../../runtime/worlds/index.ts';

const HOSTILE = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
const protoKeys = () => Object.getOwnPropertyNames(Object.prototype).sort();
const before = protoKeys();
afterEach(() => expect(protoKeys()).toEqual(before));

describe.each(WORLD_NAMES)('%s world', (name) => {
  it('a tool named like an Object.prototype member is an unknown tool', () => {
    const w = getWorld(name);
    w.reset({ seed: 1, tags: [] });
    for (const t of HOSTILE) expect(w.call(t, {})).toMatchObject({ ok: false, kind: 'unknown_tool' });
  });

  it('an id named like an Object.prototype member is not found, in every gold call', () => {
    const tasks = makeTasks(name, { seed: 3, n: 40, split: 'train' });
    let tried = 0;
    for (const task of tasks) {
      for (const action of task.goal.gold_actions) {
        for (const [key, value] of Object.entries(action.arguments)) {
          if (typeof value !== 'string' || !key.endsWith('_id')) continue;
          for (const bad of HOSTILE) {
            const w = getWorld(name);
            w.reset(task);
            w.episode.confirmed = true;
            const r = w.call(action.name, { ...action.arguments, [key]: bad });
            expect(r, `${action.name}(${key}=${bad})`).toMatchObject({ ok: false, kind: 'not_found' });
            tried++;
          }
        }
      }
    }
    expect(tried).toBeGreaterThan(20);
  });
});

it('worldDef knows only its own worlds', () => {
  for (const t of HOSTILE) expect(() => worldDef(t)).toThrow(/unknown world/);
});
