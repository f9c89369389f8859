import { describe, expect, it } from 'vitest';
import { getWorld, isConfirmation, observeUserTurn, renderToolResult, WORLD_NAMES } from '../../runtime/worlds/index.ts';
import { confirmed, expectError, fresh } from './helpers.ts';
import type { RetailState } from '../../runtime/worlds/retail/tools.ts';

describe('world base', () => {
  it('has at least three worlds with eight or more tools, distractors and written policies', () => {
    expect(WORLD_NAMES.length).toBeGreaterThanOrEqual(3);
    for (const n of WORLD_NAMES) {
      const w = getWorld(n);
      expect(w.tools.length).toBeGreaterThanOrEqual(8);
      expect(w.policy).toMatch(/confirm/);
      expect(w.tools.some((t) => (t as { confirm?: boolean }).confirm)).toBe(true);
    }
  });

  it('returns structured errors for unknown tools and invalid arguments (with the zod path), never throws', () => {
    const { w } = fresh('retail');
    expectError(w, () => w.call('drop_database', {}), 'unknown_tool', /drop_database/);
    expectError(w, () => w.call('get_order', { order_id: 42 }), 'invalid_args', /get_order: order_id: .*expected string/);
    expectError(w, () => w.call('get_order', {}), 'invalid_args', /order_id/);
    expectError(w, () => w.call('get_order', { order_id: 'O-1', extra: 1 }), 'invalid_args', /extra/);
    expectError(w, () => w.call('get_order', 'not an object'), 'invalid_args', /\(arguments\)/);
    expectError(w, () => w.call('get_order', null), 'invalid_args', /order_id/);
    expectError(w, () => w.call('place_order', { customer_id: 'C-1', product_id: 'P-1', quantity: 1.5 }), 'invalid_args', /quantity/);
  });

  it('gates confirmation tools on an explicit user yes, consumed by one call', () => {
    const { w, s } = fresh<RetailState>('retail');
    const pending = Object.values(s.orders).filter((o) => o.status === 'pending' && o.total <= 500);
    expect(pending.length).toBeGreaterThan(0);
    const o = pending[0];
    expectError(w, () => w.call('cancel_order', { order_id: o.id }), 'policy', /confirmation/);
    observeUserTurn(w, 'no, wait');
    expectError(w, () => w.call('cancel_order', { order_id: o.id }), 'policy', /confirmation/);
    observeUserTurn(w, 'Yes, I confirm.');
    expect(w.call('cancel_order', { order_id: o.id }).ok).toBe(true);
    expect(w.episode.confirmed).toBe(false);
    expect(isConfirmation('yes')).toBe(true);
    expect(isConfirmation('I am not sure, yes?')).toBe(false);
  });

  it('offers distractor tools only to tasks tagged distractors', () => {
    const plain = fresh('retail', 1, []).w;
    const dis = fresh('retail', 1, ['distractors']).w;
    expect(plain.toolSpecs().map((t) => t.function.name)).not.toContain('get_weather');
    expect(dis.toolSpecs().map((t) => t.function.name)).toContain('get_weather');
    expect(plain.call('get_weather', { city: 'austin' })).toMatchObject({ ok: false, kind: 'unknown_tool' });
    expect(dis.call('get_weather', { city: 'austin' }).ok).toBe(true);
  });

  it('generates JSON Schema tool specs from the zod args', () => {
    const spec = getWorld('retail').toolSpecs().find((t) => t.function.name === 'return_item')!;
    expect(spec.function.parameters).toMatchObject({ type: 'object', required: ['order_id', 'product_id'], additionalProperties: false });
    expect(spec.function.parameters).not.toHaveProperty('$schema');
  });

  it('builds the same database and hash from the same seed, and a different one from another seed', () => {
    for (const n of WORLD_NAMES) {
      expect(fresh(n, 11).w.stateHash()).toBe(fresh(n, 11).w.stateHash());
      expect(fresh(n, 11).w.stateHash()).not.toBe(fresh(n, 12).w.stateHash());
    }
  });

  it('reports a throwing tool as an internal error', () => {
    const { w } = fresh('retail');
    (w.state() as RetailState).orders = null as never; // corrupt state: the tool throws a TypeError
    expect(w.call('get_order', { order_id: 'O-1' })).toMatchObject({ ok: false, kind: 'internal' });
  });

  it('renders results as compact JSON', () => {
    const { w } = fresh('retail');
    expect(renderToolResult(w.call('nope', {}))).toBe('{"error":"unknown_tool","message":"unknown tool \\"nope\\""}');
    void confirmed;
  });
});
