import { describe, expect, it } from 'vitest';
import type { TravelState } from '../../runtime/worlds/travel/tools.ts';
import { confirmed, expectError, expectOk, fresh } from './helpers.ts';

const setup = () => fresh<TravelState>('travel', 5);
const res = (s: TravelState, f: (r: TravelState['reservations'][string]) => boolean) => Object.values(s.reservations).find(f)!;

describe('travel tools', () => {
  it('search_flights / get_flight / get_user / get_reservation / list_airports', () => {
    const { w, s } = setup();
    const f = Object.values(s.flights)[0];
    const found = expectOk(w.call('search_flights', { origin: f.origin.toLowerCase(), destination: f.destination, date: f.date }));
    expect(found.map((x: any) => x.flight_id)).toContain(f.id);
    expect(found.map((x: any) => x.price)).toEqual([...found.map((x: any) => x.price)].sort((a, b) => a - b));
    expect(expectOk(w.call('get_flight', { flight_id: f.id })).price).toBe(f.price);
    const u = Object.values(s.users)[0];
    expect(expectOk(w.call('get_user', { user_id: u.id })).payments[0].payment_id).toBe(u.payments[0].payment_id);
    const r = Object.values(s.reservations)[0];
    expect(expectOk(w.call('get_reservation', { reservation_id: r.id })).fare).toBe(r.fare);
    expect(expectOk(w.call('list_airports', {}))).toContain('JFK');
    expectError(w, () => w.call('search_flights', { origin: 'JFKX', destination: 'LAX', date: '2025-06-01' }), 'invalid_args', /origin/);
    expectError(w, () => w.call('get_flight', { flight_id: 'F-0' }), 'not_found');
    expectError(w, () => w.call('get_user', { user_id: 'U-0' }), 'not_found');
    expectError(w, () => w.call('get_reservation', { reservation_id: 'R-0' }), 'not_found');
  });

  it('book_flight: seats, balance and payment ownership are preconditions; charges and creates a reservation', () => {
    const { w, s } = setup();
    const u = Object.values(s.users)[0];
    const pay = u.payments[0];
    const f = Object.values(s.flights).find((x) => x.seats > 0 && x.price * 1.5 <= pay.balance)!;
    const before = pay.balance;
    expect(expectOk(confirmed(w, 'book_flight', { user_id: u.id, flight_id: f.id, fare: 'flex', payment_id: pay.payment_id }))).toEqual({ reservation_id: 'R-9001', paid: f.price * 1.5 });
    expect(pay.balance).toBeCloseTo(before - f.price * 1.5, 2);
    expectError(w, () => confirmed(w, 'book_flight', { user_id: u.id, flight_id: f.id, fare: 'first', payment_id: pay.payment_id }), 'invalid_args', /fare/);
    expectError(w, () => confirmed(w, 'book_flight', { user_id: u.id, flight_id: f.id, fare: 'basic', payment_id: 'card-0' }), 'not_found', /no payment/);
    const full = Object.values(s.flights).find((x) => x.seats === 0);
    if (full) expectError(w, () => confirmed(w, 'book_flight', { user_id: u.id, flight_id: full.id, fare: 'basic', payment_id: pay.payment_id }), 'precondition', /full/);
    pay.balance = 1;
    expectError(w, () => confirmed(w, 'book_flight', { user_id: u.id, flight_id: f.id, fare: 'basic', payment_id: pay.payment_id }), 'precondition', /needs/);
    w.episode.confirmed = false; // a failed gated call leaves the user's confirmation pending; start clean
    expectError(w, () => w.call('book_flight', { user_id: u.id, flight_id: f.id, fare: 'basic', payment_id: pay.payment_id }), 'policy', /confirmation/);
  });

  it('cancel_reservation: flex refunds, basic is policy, cancelled is a precondition', () => {
    const { w, s } = setup();
    const flex = res(s, (r) => r.status === 'booked' && r.fare === 'flex');
    const basic = res(s, (r) => r.status === 'booked' && r.fare === 'basic');
    expect(expectOk(confirmed(w, 'cancel_reservation', { reservation_id: flex.id }))).toMatchObject({ status: 'cancelled', refund: flex.paid });
    expectError(w, () => confirmed(w, 'cancel_reservation', { reservation_id: flex.id }), 'precondition', /cancelled/);
    expectError(w, () => confirmed(w, 'cancel_reservation', { reservation_id: basic.id }), 'policy', /basic/);
  });

  it('add_bags: bag limit is policy, fee charged, cancelled reservation rejected', () => {
    const { w, s } = setup();
    const r = res(s, (x) => x.status === 'booked' && x.bags < 3);
    const bags = r.bags;
    expect(expectOk(w.call('add_bags', { reservation_id: r.id, bags: 1 }))).toEqual({ reservation_id: r.id, bags: bags + 1, fee: 30 });
    expectError(w, () => w.call('add_bags', { reservation_id: r.id, bags: 3 }), 'policy', /at most 3/);
    expectError(w, () => w.call('add_bags', { reservation_id: r.id, bags: 0 }), 'invalid_args', /bags/);
    const c = res(s, (x) => x.status === 'cancelled');
    if (c) expectError(w, () => w.call('add_bags', { reservation_id: c.id, bags: 1 }), 'precondition', /cancelled/);
  });

  it('change_flight: same route only, basic is policy, charges the difference', () => {
    const { w, s } = setup();
    const flex = Object.values(s.reservations).filter((r) => r.status === 'booked' && r.fare === 'flex');
    const pairs = flex.flatMap((r) => Object.values(s.flights).filter((f) => f.id !== r.flight_id && f.origin === s.flights[r.flight_id].origin
      && f.destination === s.flights[r.flight_id].destination && f.seats > 0).map((to) => ({ r, to })));
    const { r, to } = pairs[0];
    const other = Object.values(s.flights).find((f) => f.origin !== s.flights[r.flight_id].origin)!;
    expectError(w, () => confirmed(w, 'change_flight', { reservation_id: r.id, flight_id: other.id }), 'precondition', /route/);
    expectError(w, () => confirmed(w, 'change_flight', { reservation_id: r.id, flight_id: r.flight_id }), 'precondition', /already/);
    const diff = expectOk(confirmed(w, 'change_flight', { reservation_id: r.id, flight_id: to.id })).difference;
    expect(diff).toBeCloseTo(to.price * 1.5 - (r.paid - diff), 2);
    expect(s.reservations[r.id].flight_id).toBe(to.id);
    const basic = res(s, (x) => x.status === 'booked' && x.fare === 'basic');
    expectError(w, () => confirmed(w, 'change_flight', { reservation_id: basic.id, flight_id: to.id }), 'policy', /basic/);
  });
});
