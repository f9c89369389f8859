import { z } from 'zod';
import { notFound, own, policyViolation, precondition, tool, type WorldTool } from '../base.ts';
import { personName, uniqueIds } from '../names.ts';
import { Rng } from '../../engine/rng.ts';
import { cents } from '../money.ts';

/* Travel: users with payment methods, flights, reservations (basic fares are final; flex can change/cancel). */

export type Fare = 'basic' | 'flex';
export interface Payment { payment_id: string; kind: 'card' | 'gift'; balance: number }
export interface User { id: string; name: string; payments: Payment[] }
export interface Flight { id: string; origin: string; destination: string; date: string; price: number; seats: number }
export interface Reservation { id: string; user_id: string; flight_id: string; fare: Fare; status: 'booked' | 'cancelled'; bags: number; paid: number; payment_id: string }
export interface TravelState {
  users: Record<string, User>;
  flights: Record<string, Flight>;
  reservations: Record<string, Reservation>;
  next_reservation: number;
}

export const AIRPORTS = ['JFK', 'LAX', 'SFO', 'ORD', 'MIA', 'SEA', 'BOS', 'DEN'];
export const DATES = ['2025-06-01', '2025-06-02', '2025-06-03'];
export const MAX_BAGS = 3;
export const BAG_FEE = 30;
export const fareCost = (price: number, fare: Fare): number => cents(fare === 'flex' ? price * 1.5 : price);

export function initTravel(seed: number): TravelState {
  const rng = new Rng(seed);
  const flights: Record<string, Flight> = {};
  const fids = uniqueIds(rng, 'F', 24, 100, 999);
  const codes = rng.shuffle(AIRPORTS);
  const routes = [[codes[0], codes[1]], [codes[1], codes[0]], [codes[2], codes[3]], [codes[4], codes[5]]];
  for (const [origin, destination] of routes) {
    for (const date of DATES) {
      for (let k = rng.int(1, 2); k > 0 && fids.length; k--) {
        const id = fids.pop()!;
        flights[id] = { id, origin, destination, date, price: rng.int(80, 600), seats: rng.int(0, 9) };
      }
    }
  }
  const users: Record<string, User> = {};
  const reservations: Record<string, Reservation> = {};
  const used = new Set<string>();
  const rids = uniqueIds(rng, 'R', 15, 1000, 8999);
  const fl = Object.keys(flights);
  for (const uid of uniqueIds(rng, 'U', 5, 100, 999)) {
    const { first, last } = personName(rng, used);
    const payments: Payment[] = [{ payment_id: `card-${rng.int(1000, 9999)}`, kind: 'card', balance: rng.int(1500, 4000) }];
    if (rng.chance(0.5)) payments.push({ payment_id: `gift-${rng.int(1000, 9999)}`, kind: 'gift', balance: rng.int(50, 300) });
    users[uid] = { id: uid, name: `${first} ${last}`, payments };
    for (let k = rng.int(2, 3); k > 0; k--) {
      const id = rids.pop()!;
      const f = flights[rng.pick(fl)];
      const fare: Fare = rng.chance(0.55) ? 'flex' : 'basic';
      reservations[id] = { id, user_id: uid, flight_id: f.id, fare, status: rng.chance(0.8) ? 'booked' : 'cancelled',
        bags: rng.int(0, 2), paid: fareCost(f.price, fare), payment_id: payments[0].payment_id };
    }
  }
  return { users, flights, reservations, next_reservation: 9001 };
}

const id = (what: string) => z.string().min(1).describe(what);
const getUser = (s: TravelState, uid: string): User => own(s.users, uid) ?? notFound(`user ${uid} not found`);
const getFlight = (s: TravelState, fid: string): Flight => own(s.flights, fid) ?? notFound(`flight ${fid} not found`);
const getRes = (s: TravelState, rid: string): Reservation => own(s.reservations, rid) ?? notFound(`reservation ${rid} not found`);
const paymentOf = (s: TravelState, r: Reservation): Payment =>
  s.users[r.user_id].payments.find((p) => p.payment_id === r.payment_id) ?? notFound(`payment ${r.payment_id} not found`);
const booked = (r: Reservation): void => {
  if (r.status !== 'booked') precondition(`reservation ${r.id} is ${r.status}`);
};

type T = WorldTool<TravelState>;
export const travelTools: T[] = [
  tool({ name: 'search_flights', description: 'Flights on a route and date, cheapest first.',
    args: z.strictObject({ origin: z.string().length(3), destination: z.string().length(3), date: z.string().describe('YYYY-MM-DD') }),
    run: (s: TravelState, a) => Object.values(s.flights)
      .filter((f) => f.origin === a.origin.toUpperCase() && f.destination === a.destination.toUpperCase() && f.date === a.date)
      .sort((x, y) => x.price - y.price || x.id.localeCompare(y.id)).map((f) => ({ flight_id: f.id, price: f.price, seats: f.seats })) }),
  tool({ name: 'get_flight', description: 'Get a flight.', args: z.strictObject({ flight_id: id('e.g. F-123') }),
    run: (s: TravelState, a) => {
      const f = getFlight(s, a.flight_id);
      return { flight_id: f.id, origin: f.origin, destination: f.destination, date: f.date, price: f.price, seats: f.seats };
    } }),
  tool({ name: 'get_user', description: 'Get a user with payment methods and reservations.', args: z.strictObject({ user_id: id('e.g. U-123') }),
    run: (s: TravelState, a) => {
      const u = getUser(s, a.user_id);
      const res = Object.values(s.reservations).filter((r) => r.user_id === u.id).map((r) => r.id).sort();
      return { user_id: u.id, name: u.name, payments: u.payments, reservations: res };
    } }),
  tool({ name: 'get_reservation', description: 'Get a reservation.', args: z.strictObject({ reservation_id: id('e.g. R-1234') }),
    run: (s: TravelState, a) => {
      const r = getRes(s, a.reservation_id);
      return { reservation_id: r.id, user_id: r.user_id, flight_id: r.flight_id, fare: r.fare, status: r.status, bags: r.bags, paid: r.paid };
    } }),
  tool({ name: 'book_flight', description: 'Book a flight (needs user confirmation).', mutates: true, confirm: true,
    args: z.strictObject({ user_id: id('e.g. U-123'), flight_id: id('e.g. F-123'), fare: z.enum(['basic', 'flex']), payment_id: id('e.g. card-1234') }),
    run: (s: TravelState, a) => {
      const u = getUser(s, a.user_id);
      const f = getFlight(s, a.flight_id);
      const pay = u.payments.find((p) => p.payment_id === a.payment_id) ?? notFound(`user ${u.id} has no payment ${a.payment_id}`);
      const cost = fareCost(f.price, a.fare);
      if (f.seats < 1) precondition(`flight ${f.id} is full`);
      if (pay.balance < cost) precondition(`payment ${pay.payment_id} has ${pay.balance}, needs ${cost}`);
      pay.balance = cents(pay.balance - cost);
      f.seats -= 1;
      const rid = `R-${s.next_reservation++}`;
      s.reservations[rid] = { id: rid, user_id: u.id, flight_id: f.id, fare: a.fare, status: 'booked', bags: 0, paid: cost, payment_id: pay.payment_id };
      return { reservation_id: rid, paid: cost };
    } }),
  tool({ name: 'cancel_reservation', description: 'Cancel a reservation and refund it (needs user confirmation).', mutates: true, confirm: true,
    args: z.strictObject({ reservation_id: id('e.g. R-1234') }),
    run: (s: TravelState, a) => {
      const r = getRes(s, a.reservation_id);
      booked(r);
      if (r.fare === 'basic') policyViolation('basic fares cannot be cancelled or refunded');
      const pay = paymentOf(s, r);
      pay.balance = cents(pay.balance + r.paid);
      r.status = 'cancelled';
      if (s.flights[r.flight_id]) s.flights[r.flight_id].seats += 1;
      return { reservation_id: r.id, status: r.status, refund: r.paid };
    } }),
  tool({ name: 'add_bags', description: `Add checked bags (${BAG_FEE} each, charged to the reservation's payment).`, mutates: true,
    args: z.strictObject({ reservation_id: id('e.g. R-1234'), bags: z.number().int().min(1) }),
    run: (s: TravelState, a) => {
      const r = getRes(s, a.reservation_id);
      booked(r);
      if (r.bags + a.bags > MAX_BAGS) policyViolation(`at most ${MAX_BAGS} bags per reservation`);
      const pay = paymentOf(s, r);
      const fee = a.bags * BAG_FEE;
      if (pay.balance < fee) precondition(`payment ${pay.payment_id} cannot cover ${fee}`);
      pay.balance = cents(pay.balance - fee);
      r.bags += a.bags;
      return { reservation_id: r.id, bags: r.bags, fee };
    } }),
  tool({ name: 'change_flight', description: 'Move a flex reservation to another flight on the same route (needs user confirmation).',
    mutates: true, confirm: true, args: z.strictObject({ reservation_id: id('e.g. R-1234'), flight_id: id('e.g. F-123') }),
    run: (s: TravelState, a) => {
      const r = getRes(s, a.reservation_id);
      booked(r);
      if (r.fare === 'basic') policyViolation('basic fares cannot be changed');
      const from = getFlight(s, r.flight_id);
      const to = getFlight(s, a.flight_id);
      if (to.origin !== from.origin || to.destination !== from.destination) precondition(`flight ${to.id} is not on route ${from.origin}-${from.destination}`);
      if (to.id === from.id) precondition(`reservation ${r.id} is already on flight ${to.id}`);
      if (to.seats < 1) precondition(`flight ${to.id} is full`);
      const pay = paymentOf(s, r);
      const diff = cents(fareCost(to.price, r.fare) - r.paid);
      if (pay.balance < diff) precondition(`payment ${pay.payment_id} cannot cover ${diff}`);
      pay.balance = cents(pay.balance - diff);
      from.seats += 1;
      to.seats -= 1;
      r.flight_id = to.id;
      r.paid = cents(r.paid + diff);
      return { reservation_id: r.id, flight_id: to.id, difference: diff };
    } }),
  tool({ name: 'list_airports', description: 'Airport codes served.', args: z.strictObject({}), run: () => AIRPORTS }),
];

export const travelDistractors: T[] = [
  tool({ name: 'get_weather', description: 'Current weather in a city.', args: z.strictObject({ city: z.string().min(1) }),
    run: (_s: TravelState, a) => ({ city: a.city, forecast: 'cloudy', celsius: 17 }) }),
  tool({ name: 'convert_currency', description: 'Convert an amount between currencies.',
    args: z.strictObject({ amount: z.number(), from: z.string().length(3), to: z.string().length(3) }),
    run: (_s: TravelState, a) => ({ amount: cents(a.amount * 0.9), currency: a.to }) }),
];
