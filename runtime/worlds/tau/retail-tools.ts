import { calculate } from './calc.ts';
import type { TauDb } from './db.ts';
import { isObj, newObj, num, pyAbs, pyAdd, pyDumps, pySet, pySub, round2, byCodePoint, type Py, type PyObj } from './pyvalue.ts';

/*
 * The 16 retail tools of τ-bench (sierra-research/tau-bench @ 59a200c), re-implemented from
 * data/tau-bench/retail/TOOLS_SPEC.md: same validation order, same `Error: …` strings, same writes, including the
 * upstream quirks published scores depend on (refund of every payment-history entry on cancel, unrounded
 * `|diff|` in modify_pending_order_items, sorted exchange/return item lists, …). Every tool returns the
 * observation string the agent sees.
 */
export type TauTool = (db: TauDb, a: PyObj) => string;

const err = (m: string) => `Error: ${m}`;
const str = (v: Py) => v as string;
const list = (v: Py) => { if (!Array.isArray(v)) throw new Error(`'${typeof v}' object is not iterable`); return v as Py[]; };
const sortedStrings = (v: Py[]) => [...v].sort((a, b) => byCodePoint(String(a), String(b)));

function findUser(db: TauDb, pred: (u: PyObj) => boolean): string {
  for (const [id, u] of db.table('users')) if (pred(u as PyObj)) return id;
  return err('user not found');
}

/** Multiset check: the first requested id requested more often than the order holds it, or null. */
function missingItem(order: PyObj, itemIds: Py[]): Py | null {
  const held = (order.items as PyObj[]).map((it) => it.item_id);
  for (const id of itemIds) {
    if (itemIds.filter((x) => x === id).length > held.filter((x) => x === id).length) return id;
  }
  return null;
}

function pendingOrder(db: TauDb, id: Py, verb: string): PyObj | string {
  const order = db.get('orders', str(id));
  if (!order) return err('order not found');
  if (order.status !== 'pending') return err(`non-pending order cannot be ${verb}`);
  return order;
}

/** Shared price-difference walk of modify_pending_order_items / exchange_delivered_order_items. */
function priceDiff(db: TauDb, order: PyObj, oldIds: Py[], newIds: Py[]): Py | string {
  let diff: Py = 0;
  for (let k = 0; k < oldIds.length; k++) {
    const item = (order.items as PyObj[]).find((it) => it.item_id === oldIds[k])!;
    const variants = db.get('products', str(item.product_id))!.variants as PyObj;
    const variant = isObj(variants) && Object.hasOwn(variants, str(newIds[k])) ? (variants[str(newIds[k])] as PyObj) : null;
    if (!variant || !variant.available) return err(`new item ${str(newIds[k])} not found or available`);
    diff = pyAdd(diff, pySub(variant.price, item.price));
  }
  return diff;
}

function itemsChange(db: TauDb, a: PyObj, mode: 'modify' | 'exchange'): PyObj | string {
  const order = db.get('orders', str(a.order_id));
  if (!order) return err('order not found');
  if (mode === 'modify' && order.status !== 'pending') return err('non-pending order cannot be modified');
  if (mode === 'exchange' && order.status !== 'delivered') return err('non-delivered order cannot be exchanged');
  const oldIds = list(a.item_ids), newIds = list(a.new_item_ids);
  const missing = missingItem(order, oldIds);
  if (missing !== null) return err(`${str(missing)} not found`);
  if (oldIds.length !== newIds.length) return err('the number of items to be exchanged should match');
  let diff = priceDiff(db, order, oldIds, newIds);
  if (typeof diff === 'string') return diff;
  if (mode === 'exchange') diff = round2(diff);
  const user = db.get('users', str(order.user_id))!;
  const pm = (user.payment_methods as PyObj)[str(a.payment_method_id)] as PyObj | undefined;
  if (!Object.hasOwn(user.payment_methods as PyObj, str(a.payment_method_id)) || !pm) return err('payment method not found');
  if (pm.source === 'gift_card' && num(pm.balance) < num(diff)) {
    return err(mode === 'modify' ? 'insufficient gift card balance to pay for the new item' : 'insufficient gift card balance to pay for the price difference');
  }
  return newObj([['diff', diff]]);
}

const modifyItems: TauTool = (db, a) => {
  const check = itemsChange(db, a, 'modify');
  if (typeof check === 'string') return check;
  const diff = check.diff, order = db.mut('orders', str(a.order_id));
  (order.payment_history as Py[]).push(newObj([['transaction_type', num(diff) > 0 ? 'payment' : 'refund'], ['amount', pyAbs(diff)], ['payment_method_id', a.payment_method_id]]));
  const pm = (db.get('users', str(order.user_id))!.payment_methods as PyObj)[str(a.payment_method_id)] as PyObj;
  if (pm.source === 'gift_card') {
    const m = (db.mut('users', str(order.user_id)).payment_methods as PyObj)[str(a.payment_method_id)] as PyObj;
    m.balance = round2(pySub(m.balance, diff));
  }
  const oldIds = list(a.item_ids), newIds = list(a.new_item_ids);
  for (let k = 0; k < oldIds.length; k++) {
    const item = (order.items as PyObj[]).find((it) => it.item_id === oldIds[k])!;
    const variant = (db.get('products', str(item.product_id))!.variants as PyObj)[str(newIds[k])] as PyObj;
    item.item_id = newIds[k]; item.price = variant.price; item.options = variant.options;
  }
  order.status = 'pending (item modified)';
  return pyDumps(order);
};

const exchangeItems: TauTool = (db, a) => {
  const check = itemsChange(db, a, 'exchange');
  if (typeof check === 'string') return check;
  const order = db.mut('orders', str(a.order_id));
  order.status = 'exchange requested';
  pySet(order, 'exchange_items', sortedStrings(list(a.item_ids)));
  pySet(order, 'exchange_new_items', sortedStrings(list(a.new_item_ids)));
  pySet(order, 'exchange_payment_method_id', a.payment_method_id);
  pySet(order, 'exchange_price_difference', check.diff);
  return pyDumps(order);
};

const cancelPending: TauTool = (db, a) => {
  const found = pendingOrder(db, a.order_id, 'cancelled');
  if (typeof found === 'string') return found;
  if (a.reason !== 'no longer needed' && a.reason !== 'ordered by mistake') return err('invalid reason');
  const order = db.mut('orders', str(a.order_id));
  const refunds: Py[] = [];
  for (const p of order.payment_history as PyObj[]) {
    refunds.push(newObj([['transaction_type', 'refund'], ['amount', p.amount], ['payment_method_id', p.payment_method_id]]));
    if (str(p.payment_method_id).includes('gift_card')) {
      const m = (db.mut('users', str(order.user_id)).payment_methods as PyObj)[str(p.payment_method_id)] as PyObj;
      if (!m) throw new Error(`'${str(p.payment_method_id)}'`);
      m.balance = round2(pyAdd(m.balance, p.amount));
    }
  }
  order.status = 'cancelled';
  pySet(order, 'cancel_reason', a.reason);
  (order.payment_history as Py[]).push(...refunds);
  return pyDumps(order);
};

const ADDRESS = ['address1', 'address2', 'city', 'state', 'country', 'zip'];
const address = (a: PyObj) => newObj(ADDRESS.map((k) => [k, a[k]]));

const modifyAddress: TauTool = (db, a) => {
  const found = pendingOrder(db, a.order_id, 'modified');
  if (typeof found === 'string') return found;
  const order = db.mut('orders', str(a.order_id));
  order.address = address(a);
  return pyDumps(order);
};

const modifyPayment: TauTool = (db, a) => {
  const found = pendingOrder(db, a.order_id, 'modified');
  if (typeof found === 'string') return found;
  const methods = db.get('users', str(found.user_id))!.payment_methods as PyObj;
  const newId = str(a.payment_method_id);
  if (!Object.hasOwn(methods, newId)) return err('payment method not found');
  const history = found.payment_history as PyObj[];
  if (history.length !== 1 || history[0].transaction_type !== 'payment') return err('there should be exactly one payment for a pending order');
  const oldId = str(history[0].payment_method_id), amount = history[0].amount;
  if (oldId === newId) return err('the new payment method should be different from the current one');
  if ((methods[newId] as PyObj).source === 'gift_card' && num((methods[newId] as PyObj).balance) < num(amount)) return err('insufficient gift card balance to pay for the order');
  const order = db.mut('orders', str(a.order_id));
  (order.payment_history as Py[]).push(
    newObj([['transaction_type', 'payment'], ['amount', amount], ['payment_method_id', newId]]),
    newObj([['transaction_type', 'refund'], ['amount', amount], ['payment_method_id', oldId]]));
  const owner = () => db.mut('users', str(order.user_id)).payment_methods as PyObj;
  if ((methods[newId] as PyObj).source === 'gift_card') { const m = owner()[newId] as PyObj; m.balance = round2(pySub(m.balance, amount)); }
  if (oldId.includes('gift_card')) { const m = owner()[oldId] as PyObj; m.balance = round2(pyAdd(m.balance, amount)); }
  return pyDumps(order);
};

const returnItems: TauTool = (db, a) => {
  const order = db.get('orders', str(a.order_id));
  if (!order) return err('order not found');
  if (order.status !== 'delivered') return err('non-delivered order cannot be returned');
  const methods = db.get('users', str(order.user_id))!.payment_methods as PyObj;
  const pmId = str(a.payment_method_id);
  if (!Object.hasOwn(methods, pmId)) return err('payment method not found');
  if (!pmId.includes('gift_card') && pmId !== (order.payment_history as PyObj[])[0].payment_method_id) return err('payment method should be either the original payment method or a gift card');
  if (missingItem(order, list(a.item_ids)) !== null) return err('some item not found');
  const o = db.mut('orders', str(a.order_id));
  o.status = 'return requested';
  pySet(o, 'return_items', sortedStrings(list(a.item_ids)));
  pySet(o, 'return_payment_method_id', pmId);
  return pyDumps(o);
};

const lower = (v: Py) => String(v).toLowerCase();

export const RETAIL_TOOLS: Record<string, TauTool> = {
  calculate: (_db, a) => calculate(str(a.expression)),
  cancel_pending_order: cancelPending,
  exchange_delivered_order_items: exchangeItems,
  find_user_id_by_email: (db, a) => findUser(db, (u) => lower(u.email) === lower(a.email)),
  find_user_id_by_name_zip: (db, a) => findUser(db, (u) => {
    const n = u.name as PyObj;
    return lower(n.first_name) === lower(a.first_name) && lower(n.last_name) === lower(a.last_name) && (u.address as PyObj).zip === a.zip;
  }),
  get_order_details: (db, a) => { const o = db.get('orders', str(a.order_id)); return o ? pyDumps(o) : err('order not found'); },
  get_product_details: (db, a) => { const p = db.get('products', str(a.product_id)); return p ? pyDumps(p) : err('product not found'); },
  get_user_details: (db, a) => { const u = db.get('users', str(a.user_id)); return u ? pyDumps(u) : err('user not found'); },
  list_all_product_types: (db) => {
    const byName = new Map<string, Py>();
    for (const [id, p] of db.table('products')) byName.set(str((p as PyObj).name), id);
    return pyDumps(newObj([...byName.keys()].sort(byCodePoint).map((k) => [k, byName.get(k)!])));
  },
  modify_pending_order_address: modifyAddress,
  modify_pending_order_items: modifyItems,
  modify_pending_order_payment: modifyPayment,
  modify_user_address: (db, a) => {
    if (!db.has('users', str(a.user_id))) return err('user not found');
    const u = db.mut('users', str(a.user_id));
    u.address = address(a);
    return pyDumps(u);
  },
  return_delivered_order_items: returnItems,
  think: () => '',
  transfer_to_human_agents: () => 'Transfer successful',
};
