import { calculate } from './calc.ts';
import type { TauDb } from './db.ts';
import type { TauTool } from './retail-tools.ts';
import { deepClone, isObj, newObj, num, numRepr, pyAdd, pyDumps, pyKeys, pyMul, pyNeg, pySet, pySub, type Py, type PyObj } from './pyvalue.ts';

/*
 * The 14 airline tools of τ-bench (@ 59a200c), re-implemented from data/tau-bench/airline/TOOLS_SPEC.md. Kept
 * upstream quirks: get_reservation_details says "user not found"; bookings get ids HATHAT/HATHAU/HATHAV and a
 * fixed created_at; seats are never decremented; a used certificate is deleted whole; cancel appends negated
 * copies of every payment without refunding balances; update_reservation_flights does not store the new cabin;
 * search_onestop_flight builds the next-day date without zero padding and shows leg 2's first-day status.
 */
const err = (m: string) => `Error: ${m}`;
const str = (v: Py) => v as string;
const list = (v: Py) => { if (!Array.isArray(v)) throw new Error(`'${typeof v}' object is not iterable`); return v as Py[]; };

const AIRPORTS: Array<[string, string]> = [['SFO', 'San Francisco'], ['JFK', 'New York'], ['LAX', 'Los Angeles'], ['ORD', 'Chicago'],
  ['DFW', 'Dallas'], ['DEN', 'Denver'], ['SEA', 'Seattle'], ['ATL', 'Atlanta'], ['MIA', 'Miami'], ['BOS', 'Boston'], ['PHX', 'Phoenix'],
  ['IAH', 'Houston'], ['LAS', 'Las Vegas'], ['MCO', 'Orlando'], ['EWR', 'Newark'], ['CLT', 'Charlotte'], ['MSP', 'Minneapolis'],
  ['DTW', 'Detroit'], ['PHL', 'Philadelphia'], ['LGA', 'LaGuardia']];

/** A flight's fields except `dates`, followed by one day's fields (and extra keys). */
function flightView(f: PyObj, day: PyObj, extra: Array<[string, Py]> = []): PyObj {
  const entries: Array<[string, Py]> = pyKeys(f).filter((k) => k !== 'dates').map((k) => [k, f[k]]);
  return newObj([...entries, ...pyKeys(day).map((k): [string, Py] => [k, day[k]]), ...extra]);
}

const dayOf = (f: PyObj, date: string) => (Object.hasOwn(f.dates as PyObj, date) ? ((f.dates as PyObj)[date] as PyObj) : undefined);

const searchDirect: TauTool = (db, a) => {
  const out: Py[] = [];
  for (const f of db.table('flights').values() as Iterable<PyObj>) {
    const day = dayOf(f, str(a.date));
    if (f.origin === a.origin && f.destination === a.destination && day && day.status === 'available') out.push(flightView(f, day));
  }
  return pyDumps(out);
};

const searchOnestop: TauTool = (db, a) => {
  const out: Py[] = [];
  const flights = [...db.table('flights').values()] as PyObj[];
  const date = str(a.date);
  for (const f1 of flights) {
    if (f1.origin !== a.origin) continue;
    for (const f2 of flights) {
      if (f2.destination !== a.destination || f1.destination !== f2.origin) continue;
      // upstream: "2024-05-" + str(int(date[-2:]) + 1), no zero padding
      const date2 = str(f1.scheduled_arrival_time_est).includes('+1') ? `2024-05-${Number(date.slice(-2)) + 1}` : date;
      if (str(f1.scheduled_arrival_time_est) > str(f2.scheduled_departure_time_est)) continue;
      const d1 = dayOf(f1, date), d2 = dayOf(f2, date2);
      if (!d1 || !d2 || d1.status !== 'available' || d2.status !== 'available') continue;
      const shown2 = dayOf(f2, date);
      if (!shown2) throw new Error(`'${date}'`);
      out.push([flightView(f1, d1, [['date', date]]), flightView(f2, shown2, [['date', date2]])]);
    }
  }
  return pyDumps(out);
};

/** Prices the segments (book_reservation step 4 / update_reservation_flights' new segments). */
function priceSegment(db: TauDb, seg: PyObj, cabin: string, n: number): Py | string {
  const num_ = str(seg.flight_number), date = str(seg.date);
  const f = db.get('flights', num_);
  if (!f) return err(`flight ${num_} not found`);
  const day = dayOf(f, date);
  if (!day) return err(`flight ${num_} not found on date ${date}`);
  if (day.status !== 'available') return err(`flight ${num_} not available on date ${date}`);
  if (num((day.available_seats as PyObj)[cabin]) < n) return err(`not enough seats on flight ${num_}`);
  const price = (day.prices as PyObj)[cabin];
  pySet(seg, 'price', price); pySet(seg, 'origin', f.origin); pySet(seg, 'destination', f.destination);
  return price;
}

function bookReservation(db: TauDb, a: PyObj): string {
  const userId = str(a.user_id);
  const user = db.get('users', userId);
  if (!user) return err('user not found');
  const id = !db.has('reservations', 'HATHAT') ? 'HATHAT' : !db.has('reservations', 'HATHAU') ? 'HATHAU' : 'HATHAV';
  const flights = deepClone(list(a.flights)) as PyObj[], passengers = list(a.passengers), payments = list(a.payment_methods) as PyObj[];
  const rec = newObj([['reservation_id', id], ['user_id', a.user_id], ['origin', a.origin], ['destination', a.destination],
    ['flight_type', a.flight_type], ['cabin', a.cabin], ['flights', flights], ['passengers', a.passengers], ['payment_history', a.payment_methods],
    ['created_at', '2024-05-15T15:00:00'], ['total_baggages', a.total_baggages], ['nonfree_baggages', a.nonfree_baggages], ['insurance', a.insurance]]);
  let total: Py = 0;
  for (const seg of flights) {
    const price = priceSegment(db, seg, str(a.cabin), passengers.length);
    if (typeof price === 'string') return price;
    total = pyAdd(total, pyMul(price, passengers.length));
  }
  if (a.insurance === 'yes') total = pyAdd(total, 30 * passengers.length);
  total = pyAdd(total, pyMul(50, a.nonfree_baggages));
  const methods = user.payment_methods as PyObj;
  for (const p of payments) {
    const pid = str(p.payment_id);
    if (!Object.hasOwn(methods, pid)) return err(`payment method ${pid} not found`);
    const m = methods[pid] as PyObj;
    if ((m.source === 'gift_card' || m.source === 'certificate') && num(m.amount) < num(p.amount)) return err(`not enough balance in payment method ${pid}`);
  }
  const paid = payments.reduce<Py>((s, p) => pyAdd(s, p.amount), 0);
  if (num(paid) !== num(total)) return err(`payment amount does not add up, total price is ${numRepr(total as number)}, but paid ${numRepr(paid as number)}`);
  const u = db.mut('users', userId);
  for (const p of payments) {
    const pm = u.payment_methods as PyObj, pid = str(p.payment_id);
    const m = pm[pid] as PyObj;
    if (!m) throw new Error(`'${pid}'`);
    if (m.source === 'gift_card') m.amount = pySub(m.amount, p.amount);
    else if (m.source === 'certificate') delete pm[pid];
  }
  db.insert('reservations', id, rec);
  (u.reservations as Py[]).push(id);
  return pyDumps(rec);
}

function cancelReservation(db: TauDb, a: PyObj): string {
  if (!db.has('reservations', str(a.reservation_id))) return err('reservation not found');
  const r = db.mut('reservations', str(a.reservation_id));
  const history = r.payment_history as PyObj[];
  const refunds = history.map((p) => newObj([['payment_id', p.payment_id], ['amount', pyNeg(p.amount)]]));
  history.push(...refunds);
  pySet(r, 'status', 'cancelled');
  return pyDumps(r);
}

/** The reservation owner's payment method for an update, or the error string. */
function updatePayment(db: TauDb, r: PyObj, pid: string, cost: Py, giftMsg: string): PyObj | string {
  const methods = db.get('users', str(r.user_id))!.payment_methods as PyObj;
  if (!Object.hasOwn(methods, pid)) return err('payment method not found');
  const m = methods[pid] as PyObj;
  if (m.source === 'certificate') return err('certificate cannot be used to update reservation');
  if (m.source === 'gift_card' && num(m.amount) < num(cost)) return err(giftMsg);
  return m;
}

function updateBaggages(db: TauDb, a: PyObj): string {
  const r0 = db.get('reservations', str(a.reservation_id));
  if (!r0) return err('reservation not found');
  const extra = pySub(a.nonfree_baggages, r0.nonfree_baggages);
  const cost = pyMul(50, num(extra) > 0 ? extra : 0);
  const m = updatePayment(db, r0, str(a.payment_id), cost, 'gift card balance is not enough');
  if (typeof m === 'string') return m;
  const r = db.mut('reservations', str(a.reservation_id));
  r.total_baggages = a.total_baggages; r.nonfree_baggages = a.nonfree_baggages;
  if (m.source === 'gift_card') { const g = (db.mut('users', str(r.user_id)).payment_methods as PyObj)[str(a.payment_id)] as PyObj; g.amount = pySub(g.amount, cost); }
  if (num(cost) !== 0) (r.payment_history as Py[]).push(newObj([['payment_id', a.payment_id], ['amount', cost]]));
  return pyDumps(r);
}

function updateFlights(db: TauDb, a: PyObj): string {
  const r0 = db.get('reservations', str(a.reservation_id));
  if (!r0) return err('reservation not found');
  const segs = deepClone(list(a.flights)) as PyObj[], n = (r0.passengers as Py[]).length, cabin = str(a.cabin);
  const current = r0.flights as PyObj[];
  let total: Py = 0;
  for (const f of segs) {
    const same = cabin === r0.cabin ? current.find((s) => s.flight_number === f.flight_number && s.date === f.date) : undefined;
    if (same) {
      total = pyAdd(total, pyMul(same.price, n));
      pySet(f, 'price', same.price); pySet(f, 'origin', same.origin); pySet(f, 'destination', same.destination);
      continue;
    }
    const price = priceSegment(db, f, cabin, n);
    if (typeof price === 'string') return price;
    total = pyAdd(total, pyMul(price, n));
  }
  total = pySub(total, pyMul(current.reduce<Py>((s, f) => pyAdd(s, f.price), 0), n));
  const m = updatePayment(db, r0, str(a.payment_id), total, 'gift card balance is not enough');
  if (typeof m === 'string') return m;
  const r = db.mut('reservations', str(a.reservation_id));
  if (m.source === 'gift_card') { const g = (db.mut('users', str(r.user_id)).payment_methods as PyObj)[str(a.payment_id)] as PyObj; g.amount = pySub(g.amount, total); }
  r.flights = segs;
  if (num(total) !== 0) (r.payment_history as Py[]).push(newObj([['payment_id', a.payment_id], ['amount', total]]));
  return pyDumps(r);
}

function sendCertificate(db: TauDb, a: PyObj): string {
  const userId = str(a.user_id);
  if (!db.has('users', userId)) return err('user not found');
  for (const id of [3221322, 3221323, 3221324]) {
    const key = `certificate_${id}`;
    if (Object.hasOwn(db.get('users', userId)!.payment_methods as PyObj, key)) continue;
    pySet(db.mut('users', userId).payment_methods as PyObj, key, newObj([['source', 'certificate'], ['amount', a.amount], ['id', key]]));
    return `Certificate ${key} added to user ${userId} with amount ${typeof a.amount === 'string' || isObj(a.amount) ? String(a.amount) : numRepr(a.amount as number)}.`;
  }
  // Upstream returns None here and its environment then fails; we report it instead of crashing.
  return err('all certificate slots are used (upstream behaviour undefined)');
}

export const AIRLINE_TOOLS: Record<string, TauTool> = {
  book_reservation: bookReservation,
  calculate: (_db, a) => calculate(str(a.expression)),
  cancel_reservation: cancelReservation,
  get_reservation_details: (db, a) => { const r = db.get('reservations', str(a.reservation_id)); return r ? pyDumps(r) : err('user not found'); },
  get_user_details: (db, a) => { const u = db.get('users', str(a.user_id)); return u ? pyDumps(u) : err('user not found'); },
  list_all_airports: () => pyDumps(newObj(AIRPORTS)),
  search_direct_flight: searchDirect,
  search_onestop_flight: searchOnestop,
  send_certificate: sendCertificate,
  think: () => '',
  transfer_to_human_agents: () => 'Transfer successful',
  update_reservation_baggages: updateBaggages,
  update_reservation_flights: updateFlights,
  update_reservation_passengers: (db, a) => {
    const r0 = db.get('reservations', str(a.reservation_id));
    if (!r0) return err('reservation not found');
    if (list(a.passengers).length !== (r0.passengers as Py[]).length) return err('number of passengers does not match');
    const r = db.mut('reservations', str(a.reservation_id));
    r.passengers = a.passengers;
    return pyDumps(r);
  },
};
