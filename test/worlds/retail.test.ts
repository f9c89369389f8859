import { describe, expect, it } from 'vitest';
import type { RetailState } from '../../runtime/worlds/retail/tools.ts';
import { confirmed, expectError, expectOk, fresh } from './helpers.ts';

const setup = () => fresh<RetailState>('retail', 3);
const find = (s: RetailState, status: string, f: (o: RetailState['orders'][string]) => boolean = () => true) =>
  Object.values(s.orders).find((o) => o.status === status && f(o))!;

describe('retail tools', () => {
  it('find_customer_by_email / get_customer / list_orders', () => {
    const { w, s } = setup();
    const c = Object.values(s.customers)[0];
    expect(expectOk(w.call('find_customer_by_email', { email: c.email.toUpperCase() }))).toEqual({ customer_id: c.id, name: c.name });
    expect(expectOk(w.call('get_customer', { customer_id: c.id })).email).toBe(c.email);
    expect(expectOk(w.call('list_orders', { customer_id: c.id })).length).toBeGreaterThanOrEqual(2);
    expectError(w, () => w.call('find_customer_by_email', { email: 'x@y.z' }), 'not_found', /x@y.z/);
    expectError(w, () => w.call('get_customer', { customer_id: 'C-0' }), 'not_found', /C-0/);
    expectError(w, () => w.call('list_orders', { customer_id: 'C-0' }), 'not_found');
  });

  it('get_order / get_product / search_products', () => {
    const { w, s } = setup();
    const o = Object.values(s.orders)[0];
    const p = Object.values(s.products)[0];
    expect(expectOk(w.call('get_order', { order_id: o.id })).total).toBe(o.total);
    expect(expectOk(w.call('get_product', { product_id: p.id })).price).toBe(p.price);
    expect(expectOk(w.call('search_products', { query: p.name.toUpperCase() })).map((x: any) => x.product_id)).toContain(p.id);
    expect(expectOk(w.call('search_products', { query: 'zzz' }))).toEqual([]);
    expectError(w, () => w.call('get_order', { order_id: 'O-1' }), 'not_found');
    expectError(w, () => w.call('get_product', { product_id: 'P-1' }), 'not_found');
    expectError(w, () => w.call('search_products', { query: '' }), 'invalid_args', /query/);
  });

  it('cancel_order: pending only, total limit is policy, restocks and refunds', () => {
    const { w, s } = setup();
    const o = find(s, 'pending', (x) => x.total <= 500);
    const p = o.items[0];
    const stock = s.products[p.product_id].stock;
    expect(expectOk(confirmed(w, 'cancel_order', { order_id: o.id }))).toEqual({ order_id: o.id, status: 'cancelled', refund: o.total });
    expect(s.products[p.product_id].stock).toBeGreaterThanOrEqual(stock + p.qty);
    expectError(w, () => confirmed(w, 'cancel_order', { order_id: o.id }), 'precondition', /cancelled/);
    expectError(w, () => confirmed(w, 'cancel_order', { order_id: find(s, 'delivered').id }), 'precondition', /delivered/);
    const big = Object.values(s.orders).find((x) => x.status === 'pending' && x.total > 500);
    if (big) expectError(w, () => confirmed(w, 'cancel_order', { order_id: big.id }), 'policy', /human agent/);
    expectError(w, () => confirmed(w, 'cancel_order', { order_id: 'O-1' }), 'not_found');
  });

  it('cancel_order over the limit is a policy violation (a seed where one exists)', () => {
    for (let seed = 1; seed < 50; seed++) {
      const { w, s } = fresh<RetailState>('retail', seed);
      const big = Object.values(s.orders).find((x) => x.status === 'pending' && x.total > 500);
      if (!big) continue;
      expectError(w, () => confirmed(w, 'cancel_order', { order_id: big.id }), 'policy', /over 500/);
      return;
    }
    throw new Error('no seed with a large pending order');
  });

  it('return_item: delivered orders, item in order, once', () => {
    const { w, s } = setup();
    const o = find(s, 'delivered');
    const it0 = o.items[0];
    expectError(w, () => confirmed(w, 'return_item', { order_id: o.id, product_id: 'P-1' }), 'not_found', /not in order/);
    expect(expectOk(confirmed(w, 'return_item', { order_id: o.id, product_id: it0.product_id })).refund).toBe(it0.price * it0.qty);
    expectError(w, () => confirmed(w, 'return_item', { order_id: o.id, product_id: it0.product_id }), 'precondition', /already returned/);
    const pend = find(s, 'pending');
    expectError(w, () => confirmed(w, 'return_item', { order_id: pend.id, product_id: pend.items[0].product_id }), 'precondition', /pending/);
    w.episode.confirmed = false; // a failed gated call leaves the user's confirmation pending; start clean
    expectError(w, () => w.call('return_item', { order_id: o.id, product_id: o.items.at(-1)!.product_id }), 'policy', /confirmation/);
  });

  it('update_order_address: pending only, address length checked', () => {
    const { w, s } = setup();
    const o = find(s, 'pending');
    expect(expectOk(w.call('update_order_address', { order_id: o.id, address: '1 new st, miami' })).address).toBe('1 new st, miami');
    expectError(w, () => w.call('update_order_address', { order_id: o.id, address: 'x' }), 'invalid_args', /address/);
    expectError(w, () => w.call('update_order_address', { order_id: find(s, 'delivered').id, address: '1 new st, miami' }), 'precondition');
  });

  it('place_order: unit limit is policy, stock is a precondition, ids are sequential', () => {
    const { w, s } = setup();
    const c = Object.values(s.customers)[0];
    const p = Object.values(s.products).find((x) => x.stock >= 2)!;
    const empty = Object.values(s.products).find((x) => x.stock === 0);
    expect(expectOk(confirmed(w, 'place_order', { customer_id: c.id, product_id: p.id, quantity: 2 }))).toEqual({ order_id: 'O-9001', total: p.price * 2 });
    expect(s.orders['O-9001'].status).toBe('pending');
    expectError(w, () => confirmed(w, 'place_order', { customer_id: c.id, product_id: p.id, quantity: 6 }), 'policy', /at most 5/);
    expectError(w, () => confirmed(w, 'place_order', { customer_id: c.id, product_id: p.id, quantity: 0 }), 'invalid_args', /quantity/);
    expectError(w, () => confirmed(w, 'place_order', { customer_id: 'C-0', product_id: p.id, quantity: 1 }), 'not_found');
    if (empty) expectError(w, () => confirmed(w, 'place_order', { customer_id: c.id, product_id: empty.id, quantity: 1 }), 'precondition', /stock/);
    expect(expectOk(confirmed(w, 'place_order', { customer_id: c.id, product_id: p.id, quantity: 1 })).order_id).toBe('O-9002');
  });
});
