import type { TaskDraft, TaskKind } from '../base.ts';
import { money } from '../money.ts';
import type { Rng } from '../../engine/rng.ts';
import { BAG_FEE, MAX_BAGS, fareCost, type Reservation, type TravelState } from './tools.ts';

/* Travel task kinds, from a single lookup to six or more calls. */

type K = TaskKind<TravelState>;
const resv = (s: TravelState, f: (r: Reservation) => boolean) => Object.values(s.reservations).filter(f).sort((a, b) => a.id.localeCompare(b.id));
const pickOrNull = <T>(rng: Rng, xs: T[]): T | null => (xs.length ? rng.pick(xs) : null);
const flexBooked = (r: Reservation) => r.status === 'booked' && r.fare === 'flex';

const flightPrice: K = { name: 'flight_price', make(s, rng) {
  const f = rng.pick(Object.values(s.flights));
  return { instruction: `How much is flight ${f.id}?`, actions: [{ name: 'get_flight', arguments: { flight_id: f.id } }],
    answer: ([r]) => ({ text: `Flight ${f.id} (${r.origin} to ${r.destination}, ${r.date}) costs ${money(r.price)}.`, outputs: [money(r.price)] }) };
} };

const reservationStatus: K = { name: 'reservation_status', make(s, rng) {
  const r = rng.pick(resv(s, () => true));
  return { instruction: `What is the status of reservation ${r.id}?`, actions: [{ name: 'get_reservation', arguments: { reservation_id: r.id } }],
    answer: ([x]) => ({ text: `Reservation ${r.id} is ${x.status}.`, outputs: [x.status] }) };
} };

const cancelFlex: K = { name: 'cancel_reservation', make(s, rng) {
  const r = pickOrNull(rng, resv(s, flexBooked));
  if (!r) return null;
  const ask = rng.chance(0.4);
  const d: TaskDraft = {
    instruction: ask ? 'Please cancel one of my flight reservations.' : `Please cancel my reservation ${r.id}.`,
    actions: [{ name: 'get_reservation', arguments: { reservation_id: r.id } }, { name: 'cancel_reservation', arguments: { reservation_id: r.id } }],
    answer: ([, x]) => ({ text: `Reservation ${r.id} is cancelled. Refund: ${money(x.refund)}.`, outputs: ['cancelled', money(x.refund)] }),
  };
  if (ask) d.hidden = { reservation_id: r.id };
  return d;
} };

const addBags: K = { name: 'add_bags', make(s, rng) {
  const r = pickOrNull(rng, resv(s, (x) => x.status === 'booked' && x.bags < MAX_BAGS));
  if (!r) return null;
  const n = rng.int(1, MAX_BAGS - r.bags);
  return { instruction: `Add ${n} checked bags to reservation ${r.id}.`,
    actions: [{ name: 'get_reservation', arguments: { reservation_id: r.id } }, { name: 'add_bags', arguments: { reservation_id: r.id, bags: n } }],
    answer: ([, x]) => ({ text: `Reservation ${r.id} now has ${x.bags} bags. Fee: ${money(x.fee)}.`, outputs: [money(x.fee)] }) };
} };

const bookCheapest: K = { name: 'book_cheapest', make(s, rng) {
  const u = rng.pick(Object.values(s.users));
  const pay = u.payments[0];
  const f0 = rng.pick(Object.values(s.flights));
  const fare = rng.pick(['basic', 'flex'] as const);
  const cheapest = Object.values(s.flights).filter((f) => f.origin === f0.origin && f.destination === f0.destination && f.date === f0.date)
    .sort((a, b) => a.price - b.price || a.id.localeCompare(b.id))[0];
  if (cheapest.seats < 1 || pay.balance < fareCost(cheapest.price, fare)) return null;
  const ask = rng.chance(0.3);
  const d: TaskDraft = {
    instruction: `I am user ${u.id}. Book the cheapest flight from ${f0.origin} to ${f0.destination} on ${f0.date}, ${fare} fare, paid with ${ask ? 'my card' : pay.payment_id}.`,
    actions: [
      { name: 'get_user', arguments: { user_id: u.id } },
      { name: 'search_flights', arguments: { origin: f0.origin, destination: f0.destination, date: f0.date } },
      { name: 'book_flight', arguments: { user_id: u.id, flight_id: cheapest.id, fare, payment_id: pay.payment_id } },
    ],
    answer: (x) => ({ text: `Booked flight ${cheapest.id} as reservation ${x[2].reservation_id}. Paid: ${money(x[2].paid)}.`, outputs: [x[2].reservation_id, money(x[2].paid)] }),
  };
  if (ask) d.hidden = { payment_id: pay.payment_id };
  return d;
} };

const changeFlight: K = { name: 'change_flight', make(s, rng) {
  const options = resv(s, flexBooked).flatMap((r) => {
    const from = s.flights[r.flight_id];
    return Object.values(s.flights).filter((f) => f.id !== from.id && f.origin === from.origin && f.destination === from.destination && f.seats > 0)
      .map((to) => ({ r, to }));
  });
  const o = pickOrNull(rng, options);
  if (!o) return null;
  const pay = s.users[o.r.user_id].payments.find((p) => p.payment_id === o.r.payment_id)!;
  if (pay.balance < fareCost(o.to.price, 'flex') - o.r.paid) return null;
  return {
    instruction: `I am user ${o.r.user_id}. Move my reservation ${o.r.id} to flight ${o.to.id}.`,
    actions: [
      { name: 'get_user', arguments: { user_id: o.r.user_id } },
      { name: 'get_reservation', arguments: { reservation_id: o.r.id } },
      { name: 'get_flight', arguments: { flight_id: o.to.id } },
      { name: 'change_flight', arguments: { reservation_id: o.r.id, flight_id: o.to.id } },
    ],
    answer: (x) => ({ text: `Reservation ${o.r.id} is now on flight ${o.to.id}. Price difference: ${money(x[3].difference)}.`, outputs: [o.to.id, money(x[3].difference)] }),
  };
} };

/** get_user, then get + cancel for each booked flex reservation, then get_user again for the new balance. */
const cancelAllFlex: K = { name: 'cancel_all_flex', make(s, rng) {
  const u = pickOrNull(rng, Object.values(s.users).filter((x) => resv(s, (r) => r.user_id === x.id && flexBooked(r)).length >= 2));
  if (!u) return null;
  const rs = resv(s, (r) => r.user_id === u.id && flexBooked(r));
  return {
    instruction: `I am user ${u.id}. Cancel all my flex reservations and tell me my ${u.payments[0].payment_id} balance afterwards.`,
    actions: [
      { name: 'get_user', arguments: { user_id: u.id } },
      ...rs.flatMap((r) => [{ name: 'get_reservation', arguments: { reservation_id: r.id } }, { name: 'cancel_reservation', arguments: { reservation_id: r.id } }]),
      { name: 'get_user', arguments: { user_id: u.id } },
    ],
    answer: (x) => {
      const bal = money(x[x.length - 1].payments[0].balance);
      return { text: `Cancelled ${rs.map((r) => r.id).join(', ')}. Your ${u.payments[0].payment_id} balance is ${bal}.`, outputs: [bal] };
    },
  };
} };

const refuseBasicCancel: K = { name: 'refuse_basic_cancel', make(s, rng) {
  const r = pickOrNull(rng, resv(s, (x) => x.status === 'booked' && x.fare === 'basic'));
  if (!r) return null;
  return { instruction: `Please cancel my reservation ${r.id} and refund me.`, tags: ['refusal'],
    actions: [{ name: 'get_reservation', arguments: { reservation_id: r.id } }],
    forbidden: { name: 'cancel_reservation', arguments: { reservation_id: r.id } },
    answer: () => ({ text: `I'm sorry, I cannot cancel reservation ${r.id}: basic fares cannot be cancelled or refunded.`, outputs: [] }) };
} };

const refuseBags: K = { name: 'refuse_too_many_bags', make(s, rng) {
  const r = pickOrNull(rng, resv(s, (x) => x.status === 'booked'));
  if (!r) return null;
  const n = MAX_BAGS - r.bags + rng.int(1, 2);
  return { instruction: `Add ${n} checked bags to reservation ${r.id}.`, tags: ['refusal'],
    actions: [{ name: 'get_reservation', arguments: { reservation_id: r.id } }],
    forbidden: { name: 'add_bags', arguments: { reservation_id: r.id, bags: n } },
    answer: () => ({ text: `I'm sorry, I cannot add ${n} bags: at most ${MAX_BAGS} bags per reservation.`, outputs: [] }) };
} };

export const travelKinds: K[] = [flightPrice, reservationStatus, cancelFlex, addBags, bookCheapest, changeFlight, cancelAllFlex,
  refuseBasicCancel, refuseBags];

export const TRAVEL_POLICY = [
  'You are an airline agent. Policy:',
  '- Before book_flight, cancel_reservation or change_flight, describe the action and ask the user to confirm; call only after they say yes.',
  '- Basic fares cannot be cancelled, refunded or changed: refuse.',
  `- At most ${MAX_BAGS} checked bags per reservation (${BAG_FEE} each): refuse more.`,
  '- If a needed fact (like a reservation id) is missing, ask the user for it.',
].join('\n');
