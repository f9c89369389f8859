import { z } from 'zod';
import { notFound, own, policyViolation, precondition, tool, type WorldTool } from '../base.ts';
import { address, personName, uniqueIds } from '../names.ts';
import { Rng } from '../../engine/rng.ts';
import { cents } from '../money.ts';

/* Retail: customers, products, orders, returns. Seeded database of 6 customers, 8 products, ~15 orders. */

export type OrderStatus = 'pending' | 'shipped' | 'delivered' | 'cancelled';
export interface Customer { id: string; name: string; email: string; address: string }
export interface Product { id: string; name: string; price: number; stock: number }
export interface OrderItem { product_id: string; name: string; price: number; qty: number; returned: boolean }
export interface Order { id: string; customer_id: string; status: OrderStatus; items: OrderItem[]; total: number; address: string }
export interface RetailState {
  customers: Record<string, Customer>;
  products: Record<string, Product>;
  orders: Record<string, Order>;
  refunds: { order_id: string; product_id: string | null; amount: number }[];
  next_order: number;
}

export const MAX_CANCEL_TOTAL = 500;
export const MAX_UNITS = 5;
const PRODUCTS = ['desk lamp', 'water bottle', 'wireless mouse', 'yoga mat', 'coffee grinder', 'rain jacket',
  'backpack', 'headphones', 'office chair', 'camera', 'blender', 'tent'];
const STATUSES: OrderStatus[] = ['pending', 'pending', 'shipped', 'delivered', 'delivered', 'cancelled'];

export function initRetail(seed: number): RetailState {
  const rng = new Rng(seed);
  const products: Record<string, Product> = {};
  const names = rng.sample(PRODUCTS, 8);
  uniqueIds(rng, 'P', 8, 100, 999).forEach((id, i) => {
    const big = i < 2; // two expensive products so refusal tasks (over the cancel limit) always exist
    products[id] = { id, name: names[i], price: big ? rng.int(520, 900) : rng.int(5, 150), stock: rng.int(0, 12) };
  });
  const customers: Record<string, Customer> = {};
  const orders: Record<string, Order> = {};
  const used = new Set<string>();
  const orderIds = uniqueIds(rng, 'O', 18, 1000, 8999);
  const pids = Object.keys(products);
  for (const cid of uniqueIds(rng, 'C', 6, 100, 999)) {
    const { first, last } = personName(rng, used);
    customers[cid] = { id: cid, name: `${first} ${last}`, email: `${first}.${last}@mail.com`, address: address(rng) };
    for (let k = rng.int(2, 3); k > 0; k--) {
      const id = orderIds.pop()!;
      const items = rng.sample(pids, rng.int(1, 2)).map((p) => ({
        product_id: p, name: products[p].name, price: products[p].price, qty: rng.int(1, 2), returned: false,
      }));
      const total = cents(items.reduce((s, it) => s + it.price * it.qty, 0));
      orders[id] = { id, customer_id: cid, status: rng.pick(STATUSES), items, total, address: customers[cid].address };
    }
  }
  return { customers, products, orders, refunds: [], next_order: 9001 };
}

const id = (what: string) => z.string().min(1).describe(what);
const getOrder = (s: RetailState, oid: string): Order => own(s.orders, oid) ?? notFound(`order ${oid} not found`);
const getCustomer = (s: RetailState, cid: string): Customer => own(s.customers, cid) ?? notFound(`customer ${cid} not found`);
const getProduct = (s: RetailState, pid: string): Product => own(s.products, pid) ?? notFound(`product ${pid} not found`);
const orderView = (o: Order) => ({
  order_id: o.id, customer_id: o.customer_id, status: o.status, total: o.total, address: o.address,
  items: o.items.map((i) => ({ product_id: i.product_id, name: i.name, price: i.price, qty: i.qty, returned: i.returned })),
});

type T = WorldTool<RetailState>;
export const retailTools: T[] = [
  tool({ name: 'find_customer_by_email', description: 'Find a customer by email.', args: z.strictObject({ email: z.string().min(3) }),
    run: (s: RetailState, a) => {
      const c = Object.values(s.customers).find((x) => x.email === a.email.toLowerCase()) ?? notFound(`no customer with email ${a.email}`);
      return { customer_id: c.id, name: c.name };
    } }),
  tool({ name: 'get_customer', description: 'Get a customer profile.', args: z.strictObject({ customer_id: id('e.g. C-123') }),
    run: (s: RetailState, a) => {
      const c = getCustomer(s, a.customer_id);
      return { customer_id: c.id, name: c.name, email: c.email, address: c.address };
    } }),
  tool({ name: 'list_orders', description: "List a customer's orders.", args: z.strictObject({ customer_id: id('e.g. C-123') }),
    run: (s: RetailState, a) => {
      getCustomer(s, a.customer_id);
      return Object.values(s.orders).filter((o) => o.customer_id === a.customer_id).sort((x, y) => x.id.localeCompare(y.id))
        .map((o) => ({ order_id: o.id, status: o.status, total: o.total }));
    } }),
  tool({ name: 'get_order', description: 'Get an order with its items.', args: z.strictObject({ order_id: id('e.g. O-1234') }),
    run: (s: RetailState, a) => orderView(getOrder(s, a.order_id)) }),
  tool({ name: 'get_product', description: 'Get a product with price and stock.', args: z.strictObject({ product_id: id('e.g. P-123') }),
    run: (s: RetailState, a) => {
      const p = getProduct(s, a.product_id);
      return { product_id: p.id, name: p.name, price: p.price, stock: p.stock };
    } }),
  tool({ name: 'search_products', description: 'Search products by name.', args: z.strictObject({ query: z.string().min(1) }),
    run: (s: RetailState, a) => Object.values(s.products).filter((p) => p.name.includes(a.query.toLowerCase()))
      .sort((x, y) => x.id.localeCompare(y.id)).map((p) => ({ product_id: p.id, name: p.name, price: p.price })) }),
  tool({ name: 'cancel_order', description: 'Cancel a pending order (needs user confirmation).', mutates: true, confirm: true,
    args: z.strictObject({ order_id: id('e.g. O-1234') }),
    run: (s: RetailState, a) => {
      const o = getOrder(s, a.order_id);
      if (o.status !== 'pending') precondition(`order ${o.id} is ${o.status}; only pending orders can be cancelled`);
      if (o.total > MAX_CANCEL_TOTAL) policyViolation(`orders over ${MAX_CANCEL_TOTAL} must be cancelled by a human agent`);
      o.status = 'cancelled';
      for (const it of o.items) if (s.products[it.product_id]) s.products[it.product_id].stock += it.qty;
      s.refunds.push({ order_id: o.id, product_id: null, amount: o.total });
      return { order_id: o.id, status: o.status, refund: o.total };
    } }),
  tool({ name: 'return_item', description: 'Return one item of a delivered order (needs user confirmation).', mutates: true, confirm: true,
    args: z.strictObject({ order_id: id('e.g. O-1234'), product_id: id('e.g. P-123') }),
    run: (s: RetailState, a) => {
      const o = getOrder(s, a.order_id);
      if (o.status !== 'delivered') precondition(`order ${o.id} is ${o.status}; only delivered orders accept returns`);
      const it = o.items.find((i) => i.product_id === a.product_id) ?? notFound(`product ${a.product_id} is not in order ${o.id}`);
      if (it.returned) precondition(`product ${a.product_id} of order ${o.id} was already returned`);
      it.returned = true;
      const refund = cents(it.price * it.qty);
      s.refunds.push({ order_id: o.id, product_id: it.product_id, amount: refund });
      return { order_id: o.id, product_id: it.product_id, refund };
    } }),
  tool({ name: 'update_order_address', description: 'Change the shipping address of a pending order.', mutates: true,
    args: z.strictObject({ order_id: id('e.g. O-1234'), address: z.string().min(5) }),
    run: (s: RetailState, a) => {
      const o = getOrder(s, a.order_id);
      if (o.status !== 'pending') precondition(`order ${o.id} is ${o.status}; only pending orders can change address`);
      o.address = a.address;
      return { order_id: o.id, address: o.address };
    } }),
  tool({ name: 'place_order', description: 'Place an order for a customer (needs user confirmation).', mutates: true, confirm: true,
    args: z.strictObject({ customer_id: id('e.g. C-123'), product_id: id('e.g. P-123'), quantity: z.number().int().min(1) }),
    run: (s: RetailState, a) => {
      const c = getCustomer(s, a.customer_id);
      const p = getProduct(s, a.product_id);
      if (a.quantity > MAX_UNITS) policyViolation(`at most ${MAX_UNITS} units of a product per order`);
      if (p.stock < a.quantity) precondition(`only ${p.stock} units of ${p.id} in stock`);
      p.stock -= a.quantity;
      const oid = `O-${s.next_order++}`;
      const total = cents(p.price * a.quantity);
      s.orders[oid] = { id: oid, customer_id: c.id, status: 'pending', total, address: c.address,
        items: [{ product_id: p.id, name: p.name, price: p.price, qty: a.quantity, returned: false }] };
      return { order_id: oid, total };
    } }),
];

export const retailDistractors: T[] = [
  tool({ name: 'get_weather', description: 'Current weather in a city.', args: z.strictObject({ city: z.string().min(1) }),
    run: (_s: RetailState, a) => ({ city: a.city, forecast: 'sunny', celsius: 21 }) }),
  tool({ name: 'get_store_hours', description: 'Opening hours of the store in a city.', args: z.strictObject({ city: z.string().min(1) }),
    run: (_s: RetailState, a) => ({ city: a.city, hours: '9-18' }) }),
];
