import type { TaskDraft, TaskKind } from '../base.ts';
import { money } from '../money.ts';
import type { Rng } from '../../engine/rng.ts';
import { MAX_CANCEL_TOTAL, MAX_UNITS, type Order, type RetailState } from './tools.ts';

/* Retail task kinds, from one call (difficulty 1) to six or more. Key facts appear literally in the instruction. */

type K = TaskKind<RetailState>;
const orders = (s: RetailState, f: (o: Order) => boolean) => Object.values(s.orders).filter(f).sort((a, b) => a.id.localeCompare(b.id));
const pickOrNull = <T>(rng: Rng, xs: T[]): T | null => (xs.length ? rng.pick(xs) : null);
const emailOf = (s: RetailState, o: Order) => s.customers[o.customer_id].email;

const orderStatus: K = { name: 'order_status', make(s, rng) {
  const o = rng.pick(orders(s, () => true));
  return { instruction: `What is the status of order ${o.id}?`, actions: [{ name: 'get_order', arguments: { order_id: o.id } }],
    answer: ([r]) => ({ text: `Order ${o.id} is ${r.status}.`, outputs: [r.status] }) };
} };

const productPrice: K = { name: 'product_price', make(s, rng) {
  const p = rng.pick(Object.values(s.products));
  return { instruction: `How much does product ${p.id} cost?`, actions: [{ name: 'get_product', arguments: { product_id: p.id } }],
    answer: ([r]) => ({ text: `Product ${p.id} (${r.name}) costs ${money(r.price)}.`, outputs: [money(r.price)] }) };
} };

const cancelOrder: K = { name: 'cancel_order', make(s, rng) {
  const o = pickOrNull(rng, orders(s, (x) => x.status === 'pending' && x.total <= MAX_CANCEL_TOTAL));
  if (!o) return null;
  const ask = rng.chance(0.4);
  const draft: TaskDraft = {
    instruction: ask ? 'Please cancel one of my orders.' : `Please cancel my order ${o.id}.`,
    actions: [{ name: 'get_order', arguments: { order_id: o.id } }, { name: 'cancel_order', arguments: { order_id: o.id } }],
    answer: ([, r]) => ({ text: `Order ${o.id} is cancelled. Refund: ${money(r.refund)}.`, outputs: ['cancelled', money(r.refund)] }),
  };
  if (ask) draft.hidden = { order_id: o.id };
  return draft;
} };

const returnItem: K = { name: 'return_item', make(s, rng) {
  const o = pickOrNull(rng, orders(s, (x) => x.status === 'delivered' && x.items.some((i) => !i.returned)));
  if (!o) return null;
  const it = rng.pick(o.items);
  return {
    instruction: `I am ${emailOf(s, o)}. I want to return the ${it.name} (${it.product_id}) from order ${o.id}.`,
    actions: [
      { name: 'find_customer_by_email', arguments: { email: emailOf(s, o) } },
      { name: 'get_order', arguments: { order_id: o.id } },
      { name: 'return_item', arguments: { order_id: o.id, product_id: it.product_id } },
    ],
    answer: (r) => ({ text: `The ${it.name} from order ${o.id} is returned. Refund: ${money(r[2].refund)}.`, outputs: [money(r[2].refund)] }),
  };
} };

const placeOrder: K = { name: 'place_order', make(s, rng) {
  const p = pickOrNull(rng, Object.values(s.products).filter((x) => x.stock >= 1));
  if (!p) return null;
  const c = rng.pick(Object.values(s.customers));
  const q = rng.int(1, Math.min(MAX_UNITS, p.stock));
  return {
    instruction: `My customer id is ${c.id}. Please order ${q} units of the ${p.name}.`,
    actions: [
      { name: 'search_products', arguments: { query: p.name } },
      { name: 'get_product', arguments: { product_id: p.id } },
      { name: 'place_order', arguments: { customer_id: c.id, product_id: p.id, quantity: q } },
    ],
    answer: (r) => ({ text: `Order ${r[2].order_id} is placed. Total: ${money(r[2].total)}.`, outputs: [r[2].order_id, money(r[2].total)] }),
  };
} };

const updateAddress: K = { name: 'update_address', make(s, rng) {
  const o = pickOrNull(rng, orders(s, (x) => x.status === 'pending'));
  if (!o) return null;
  const addr = `${rng.int(100, 999)} new st, ${rng.pick(['austin', 'denver', 'miami'])}`;
  return {
    instruction: `I am ${emailOf(s, o)}. Change the shipping address of order ${o.id} to ${addr}.`,
    actions: [
      { name: 'find_customer_by_email', arguments: { email: emailOf(s, o) } },
      { name: 'get_order', arguments: { order_id: o.id } },
      { name: 'update_order_address', arguments: { order_id: o.id, address: addr } },
    ],
    answer: () => ({ text: `Order ${o.id} will ship to ${addr}.`, outputs: [addr] }),
  };
} };

/** Six or more calls: look the customer up, list orders, then inspect and cancel every pending one. */
const cancelAllPending: K = { name: 'cancel_all_pending', make(s, rng) {
  const byCustomer = Object.values(s.customers).filter((c) => {
    const mine = orders(s, (o) => o.customer_id === c.id);
    const pend = mine.filter((o) => o.status === 'pending');
    return pend.length >= 2 && pend.every((o) => o.total <= MAX_CANCEL_TOTAL);
  });
  const c = pickOrNull(rng, byCustomer);
  if (!c) return null;
  const pend = orders(s, (o) => o.customer_id === c.id && o.status === 'pending');
  return {
    instruction: `I am ${c.email}. Cancel all my pending orders and tell me the total refund.`,
    actions: [
      { name: 'find_customer_by_email', arguments: { email: c.email } },
      { name: 'list_orders', arguments: { customer_id: c.id } },
      ...pend.flatMap((o) => [{ name: 'get_order', arguments: { order_id: o.id } }, { name: 'cancel_order', arguments: { order_id: o.id } }]),
    ],
    answer: () => {
      const sum = money(pend.reduce((t, o) => t + o.total, 0));
      return { text: `Cancelled ${pend.length} orders (${pend.map((o) => o.id).join(', ')}). Total refund: ${sum}.`, outputs: [sum] };
    },
  };
} };

const refuseBigCancel: K = { name: 'refuse_big_cancel', make(s, rng) {
  const o = pickOrNull(rng, orders(s, (x) => x.status === 'pending' && x.total > MAX_CANCEL_TOTAL));
  if (!o) return null;
  return {
    instruction: `Please cancel my order ${o.id}.`, tags: ['refusal'],
    actions: [{ name: 'get_order', arguments: { order_id: o.id } }],
    forbidden: { name: 'cancel_order', arguments: { order_id: o.id } },
    answer: () => ({ text: `I'm sorry, I cannot cancel order ${o.id}: orders over ${MAX_CANCEL_TOTAL} must be cancelled by a human agent.`, outputs: [] }),
  };
} };

const refuseBulk: K = { name: 'refuse_bulk_order', make(s, rng) {
  const p = rng.pick(Object.values(s.products));
  const c = rng.pick(Object.values(s.customers));
  const q = rng.int(MAX_UNITS + 1, 12);
  return {
    instruction: `My customer id is ${c.id}. Please order ${q} units of product ${p.id}.`, tags: ['refusal'],
    actions: [{ name: 'get_product', arguments: { product_id: p.id } }],
    forbidden: { name: 'place_order', arguments: { customer_id: c.id, product_id: p.id, quantity: q } },
    answer: () => ({ text: `I'm sorry, I cannot order ${q} units: the limit is ${MAX_UNITS} units per order.`, outputs: [] }),
  };
} };

export const retailKinds: K[] = [orderStatus, productPrice, cancelOrder, returnItem, placeOrder, updateAddress,
  cancelAllPending, refuseBigCancel, refuseBulk];

/*
 * Held-out-only kinds (WorldDef.heldoutKinds): instruction templates no train split contains, from one lookup to
 * four calls, with questions for the user and policy checks the model has to make itself (the same instruction may
 * have to be done or refused, depending on what a lookup returns).
 */

const orderTotal: K = { name: 'order_total', make(s, rng) {
  const o = rng.pick(orders(s, () => true));
  return { instruction: `What was the total of my order ${o.id}?`, actions: [{ name: 'get_order', arguments: { order_id: o.id } }],
    answer: ([r]) => ({ text: `The total of order ${o.id} is ${money(r.total)}.`, outputs: [money(r.total)] }) };
} };

const customerEmail: K = { name: 'customer_email', make(s, rng) {
  const c = rng.pick(Object.values(s.customers));
  return { instruction: `Which email address do you have for customer ${c.id}?`, actions: [{ name: 'get_customer', arguments: { customer_id: c.id } }],
    answer: ([r]) => ({ text: `Customer ${c.id} has the email ${r.email}.`, outputs: [r.email] }) };
} };

/** Three calls and a question: the order id is the user's to give; the product id comes from the order. */
const returnAsk: K = { name: 'return_ask', make(s, rng) {
  const o = pickOrNull(rng, orders(s, (x) => x.status === 'delivered' && x.items.some((i) => !i.returned)));
  if (!o) return null;
  const it = rng.pick(o.items);
  return {
    instruction: `I am ${emailOf(s, o)}. I want to return the ${it.name} I bought.`, hidden: { order_id: o.id },
    actions: [
      { name: 'find_customer_by_email', arguments: { email: emailOf(s, o) } },
      { name: 'get_order', arguments: { order_id: o.id } },
      { name: 'return_item', arguments: { order_id: o.id, product_id: it.product_id } },
    ],
    answer: (r) => ({ text: `The ${it.name} from order ${o.id} is returned. Refund: ${money(r[2].refund)}.`, outputs: [money(r[2].refund)] }),
  };
} };

/** Order more of an item from an earlier order: three calls, or a refusal when the quantity is over the limit. */
const reorder: K = { name: 'reorder', make(s, rng) {
  const o = pickOrNull(rng, orders(s, (x) => x.items.some((i) => s.products[i.product_id].stock >= 1)));
  if (!o) return null;
  const it = rng.pick(o.items.filter((i) => s.products[i.product_id].stock >= 1));
  const p = s.products[it.product_id];
  const over = rng.chance(0.3);
  const q = over ? rng.int(MAX_UNITS + 1, 9) : rng.int(1, Math.min(MAX_UNITS, p.stock));
  const instruction = `I am customer ${o.customer_id}. Please order ${q} more units of the ${it.name} from my order ${o.id}.`;
  const place = { name: 'place_order', arguments: { customer_id: o.customer_id, product_id: p.id, quantity: q } };
  if (over) {
    return { instruction, tags: ['refusal'], actions: [{ name: 'get_order', arguments: { order_id: o.id } }], forbidden: place,
      answer: () => ({ text: `I'm sorry, I cannot order ${q} units: the limit is ${MAX_UNITS} units per order.`, outputs: [] }) };
  }
  return {
    instruction,
    actions: [{ name: 'get_order', arguments: { order_id: o.id } }, { name: 'get_product', arguments: { product_id: p.id } }, place],
    answer: (r) => ({ text: `Order ${r[2].order_id} is placed. Total: ${money(r[2].total)}.`, outputs: [r[2].order_id, money(r[2].total)] }),
  };
} };

/** One instruction, two outcomes: after asking for the order, cancel it, or refuse when its total is over the limit. */
const cancelChecked: K = { name: 'cancel_checked', make(s, rng) {
  const o = pickOrNull(rng, orders(s, (x) => x.status === 'pending'));
  if (!o) return null;
  const get = { name: 'get_order', arguments: { order_id: o.id } };
  const instruction = 'I would like to cancel an order.';
  if (o.total > MAX_CANCEL_TOTAL) {
    return { instruction, hidden: { order_id: o.id }, tags: ['refusal'], actions: [get], forbidden: { name: 'cancel_order', arguments: { order_id: o.id } },
      answer: () => ({ text: `I'm sorry, I cannot cancel order ${o.id}: orders over ${MAX_CANCEL_TOTAL} must be cancelled by a human agent.`, outputs: [] }) };
  }
  return { instruction, hidden: { order_id: o.id }, actions: [get, { name: 'cancel_order', arguments: { order_id: o.id } }],
    answer: ([, r]) => ({ text: `Order ${o.id} is cancelled. Refund: ${money(r.refund)}.`, outputs: [money(r.refund)] }) };
} };

/** Four calls: identify, cancel one order, then report another one's status. */
const cancelThenStatus: K = { name: 'cancel_then_status', make(s, rng) {
  const o = pickOrNull(rng, orders(s, (x) => x.status === 'pending' && x.total <= MAX_CANCEL_TOTAL));
  if (!o) return null;
  const other = pickOrNull(rng, orders(s, (x) => x.customer_id === o.customer_id && x.id !== o.id));
  if (!other) return null;
  const email = emailOf(s, o);
  return {
    instruction: `I am ${email}. Cancel my order ${o.id}, then tell me the status of my order ${other.id}.`,
    actions: [
      { name: 'find_customer_by_email', arguments: { email } },
      { name: 'get_order', arguments: { order_id: o.id } },
      { name: 'cancel_order', arguments: { order_id: o.id } },
      { name: 'get_order', arguments: { order_id: other.id } },
    ],
    answer: (r) => ({ text: `Order ${o.id} is cancelled (refund ${money(r[2].refund)}). Order ${other.id} is ${r[3].status}.`,
      outputs: [money(r[2].refund), r[3].status] }),
  };
} };

export const retailHeldoutKinds: K[] = [orderTotal, customerEmail, returnAsk, reorder, cancelChecked, cancelThenStatus];

export const RETAIL_POLICY = [
  'You are a retail support agent. Policy:',
  '- Before cancel_order, return_item or place_order, describe the action and ask the user to confirm; call only after they say yes.',
  `- Orders with a total over ${MAX_CANCEL_TOTAL} cannot be cancelled by you: refuse.`,
  `- At most ${MAX_UNITS} units of a product per order: refuse larger orders.`,
  '- Only pending orders can be cancelled or change address; only delivered orders accept returns.',
  '- If a needed fact (like an order id) is missing, ask the user for it.',
].join('\n');
