import { describe, expect, it } from 'vitest';
import type { BankState } from '../../runtime/worlds/bank/tools.ts';
import { confirmed, expectError, expectOk, fresh } from './helpers.ts';

const setup = () => fresh<BankState>('bank', 9);
const accts = (s: BankState, cid: string) => Object.values(s.accounts).filter((a) => a.customer_id === cid);

describe('bank tools', () => {
  it('get_customer / get_account / list_transactions', () => {
    const { w, s } = setup();
    const c = Object.values(s.customers)[0];
    const view = expectOk(w.call('get_customer', { customer_id: c.id }));
    expect(view.accounts.map((a: any) => a.kind).sort()).toEqual(['checking', 'savings']);
    const a = accts(s, c.id)[0];
    expect(expectOk(w.call('get_account', { account_id: a.id })).balance).toBe(a.balance);
    const tx = expectOk(w.call('list_transactions', { account_id: a.id, limit: 1 }));
    expect(tx).toEqual([{ amount: s.transactions.filter((t) => t.account_id === a.id).at(-1)!.amount, memo: expect.any(String) }]);
    expect(expectOk(w.call('list_transactions', { account_id: a.id })).length).toBeGreaterThanOrEqual(2);
    expectError(w, () => w.call('list_transactions', { account_id: a.id, limit: 50 }), 'invalid_args', /limit/);
    expectError(w, () => w.call('get_customer', { customer_id: 'C-0' }), 'not_found');
    expectError(w, () => w.call('get_account', { account_id: 'A-0' }), 'not_found');
  });

  it('transfer: same customer and limit are policy, balance is a precondition', () => {
    const { w, s } = setup();
    const [c1, c2] = Object.values(s.customers);
    const [a, b] = accts(s, c1.id);
    const x = accts(s, c2.id)[0];
    const r = expectOk(confirmed(w, 'transfer', { from_account_id: a.id, to_account_id: b.id, amount: 10 }));
    expect(r.from_balance).toBe(s.accounts[a.id].balance);
    expectError(w, () => confirmed(w, 'transfer', { from_account_id: a.id, to_account_id: x.id, amount: 10 }), 'policy', /same customer/);
    expectError(w, () => confirmed(w, 'transfer', { from_account_id: a.id, to_account_id: b.id, amount: 5001 }), 'policy', /branch/);
    expectError(w, () => confirmed(w, 'transfer', { from_account_id: a.id, to_account_id: a.id, amount: 10 }), 'precondition', /same account/);
    expectError(w, () => confirmed(w, 'transfer', { from_account_id: a.id, to_account_id: b.id, amount: -5 }), 'invalid_args', /amount/);
    s.accounts[a.id].balance = 5;
    expectError(w, () => confirmed(w, 'transfer', { from_account_id: a.id, to_account_id: b.id, amount: 10 }), 'precondition', /only/);
  });

  it('add_payee / pay_bill: duplicate payee, foreign payee, savings policy, balance', () => {
    const { w, s } = setup();
    const [c1, c2] = Object.values(s.customers);
    const chk = accts(s, c1.id).find((a) => a.kind === 'checking')!;
    const sav = accts(s, c1.id).find((a) => a.kind === 'savings')!;
    expect(expectOk(w.call('add_payee', { customer_id: c1.id, name: 'acme rent' }))).toEqual({ payee_id: 'Y-900' });
    expectError(w, () => w.call('add_payee', { customer_id: c1.id, name: 'acme rent' }), 'precondition', /exists/);
    expect(expectOk(confirmed(w, 'pay_bill', { account_id: chk.id, payee_id: 'Y-900', amount: 20 })).balance).toBe(s.accounts[chk.id].balance);
    expectError(w, () => confirmed(w, 'pay_bill', { account_id: sav.id, payee_id: 'Y-900', amount: 20 }), 'policy', /checking/);
    const foreign = Object.values(s.payees).find((p) => p.customer_id === c2.id)!;
    expectError(w, () => confirmed(w, 'pay_bill', { account_id: chk.id, payee_id: foreign.id, amount: 20 }), 'precondition', /another customer/);
    expectError(w, () => confirmed(w, 'pay_bill', { account_id: chk.id, payee_id: 'Y-1', amount: 20 }), 'not_found');
    expectError(w, () => confirmed(w, 'pay_bill', { account_id: chk.id, payee_id: 'Y-900', amount: 1e9 }), 'precondition', /only/);
  });

  it('get_card / freeze_card / unfreeze_card', () => {
    const { w, s } = setup();
    const k = Object.values(s.cards)[0];
    k.status = 'active';
    expect(expectOk(w.call('get_card', { card_id: k.id })).status).toBe('active');
    expect(expectOk(w.call('freeze_card', { card_id: k.id })).status).toBe('frozen');
    expectError(w, () => w.call('freeze_card', { card_id: k.id }), 'precondition', /already frozen/);
    expectError(w, () => w.call('unfreeze_card', { card_id: k.id }), 'policy', /confirmation/);
    expect(expectOk(confirmed(w, 'unfreeze_card', { card_id: k.id })).status).toBe('active');
    expectError(w, () => confirmed(w, 'unfreeze_card', { card_id: k.id }), 'precondition', /not frozen/);
    expectError(w, () => w.call('get_card', { card_id: 'K-0' }), 'not_found');
  });
});
