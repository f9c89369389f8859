import { z } from 'zod';
import { notFound, own, policyViolation, precondition, tool, type WorldTool } from '../base.ts';
import { personName, uniqueIds } from '../names.ts';
import { Rng } from '../../engine/rng.ts';
import { cents } from '../money.ts';

/* Bank: customers, checking/savings accounts, cards, payees and a transaction log. */

export interface Account { id: string; customer_id: string; kind: 'checking' | 'savings'; balance: number }
export interface Card { id: string; account_id: string; status: 'active' | 'frozen' }
export interface Payee { id: string; customer_id: string; name: string }
export interface Txn { account_id: string; amount: number; memo: string }
export interface BankState {
  customers: Record<string, { id: string; name: string }>;
  accounts: Record<string, Account>;
  cards: Record<string, Card>;
  payees: Record<string, Payee>;
  transactions: Txn[];
  next_payee: number;
}

export const MAX_TRANSFER = 5000;
const MEMOS = ['grocery', 'rent', 'salary', 'coffee', 'fuel', 'gym', 'pharmacy', 'books'];
export const PAYEE_NAMES = ['city power', 'water co', 'net fiber', 'gas works', 'phone plus', 'tax office', 'insurer one', 'school fees'];

export function initBank(seed: number): BankState {
  const rng = new Rng(seed);
  const s: BankState = { customers: {}, accounts: {}, cards: {}, payees: {}, transactions: [], next_payee: 900 };
  const used = new Set<string>();
  const aids = uniqueIds(rng, 'A', 10, 1000, 8999);
  const kids = uniqueIds(rng, 'K', 10, 1000, 8999);
  const yids = uniqueIds(rng, 'Y', 10, 100, 899);
  for (const cid of uniqueIds(rng, 'C', 5, 100, 999)) {
    const { first, last } = personName(rng, used);
    s.customers[cid] = { id: cid, name: `${first} ${last}` };
    for (const kind of ['checking', 'savings'] as const) {
      const id = aids.pop()!;
      s.accounts[id] = { id, customer_id: cid, kind, balance: rng.int(200, kind === 'savings' ? 20000 : 6000) };
      for (let k = rng.int(2, 3); k > 0; k--) s.transactions.push({ account_id: id, amount: rng.int(-300, 300) || 10, memo: rng.pick(MEMOS) });
      if (kind === 'checking') {
        const card = kids.pop()!;
        s.cards[card] = { id: card, account_id: id, status: rng.chance(0.7) ? 'active' : 'frozen' };
      }
    }
    for (const name of rng.sample(PAYEE_NAMES, rng.int(1, 2))) {
      const id = yids.pop()!;
      s.payees[id] = { id, customer_id: cid, name };
    }
  }
  return s;
}

const id = (what: string) => z.string().min(1).describe(what);
const amount = z.number().positive().describe('amount in dollars');
const getAcc = (s: BankState, aid: string): Account => own(s.accounts, aid) ?? notFound(`account ${aid} not found`);
const getCard = (s: BankState, kid: string): Card => own(s.cards, kid) ?? notFound(`card ${kid} not found`);
const getCust = (s: BankState, cid: string) => own(s.customers, cid) ?? notFound(`customer ${cid} not found`);
const debit = (s: BankState, a: Account, amt: number, memo: string): void => {
  a.balance = cents(a.balance - amt);
  s.transactions.push({ account_id: a.id, amount: -amt, memo });
};
const credit = (s: BankState, a: Account, amt: number, memo: string): void => {
  a.balance = cents(a.balance + amt);
  s.transactions.push({ account_id: a.id, amount: amt, memo });
};

type T = WorldTool<BankState>;
export const bankTools: T[] = [
  tool({ name: 'get_customer', description: 'Get a customer with accounts, cards and payees.', args: z.strictObject({ customer_id: id('e.g. C-123') }),
    run: (s: BankState, a) => {
      const c = getCust(s, a.customer_id);
      const accounts = Object.values(s.accounts).filter((x) => x.customer_id === c.id).map((x) => ({ account_id: x.id, kind: x.kind }));
      const cards = Object.values(s.cards).filter((k) => s.accounts[k.account_id].customer_id === c.id).map((k) => k.id).sort();
      const payees = Object.values(s.payees).filter((p) => p.customer_id === c.id).map((p) => ({ payee_id: p.id, name: p.name }));
      return { customer_id: c.id, name: c.name, accounts, cards, payees };
    } }),
  tool({ name: 'get_account', description: 'Get an account with its balance.', args: z.strictObject({ account_id: id('e.g. A-1234') }),
    run: (s: BankState, a) => {
      const x = getAcc(s, a.account_id);
      return { account_id: x.id, customer_id: x.customer_id, kind: x.kind, balance: x.balance };
    } }),
  tool({ name: 'list_transactions', description: 'Most recent transactions of an account, newest first.',
    args: z.strictObject({ account_id: id('e.g. A-1234'), limit: z.number().int().min(1).max(20).default(5) }),
    run: (s: BankState, a) => {
      getAcc(s, a.account_id);
      return s.transactions.filter((t) => t.account_id === a.account_id).slice(-a.limit).reverse().map((t) => ({ amount: t.amount, memo: t.memo }));
    } }),
  tool({ name: 'transfer', description: "Move money between the same customer's accounts (needs user confirmation).", mutates: true, confirm: true,
    args: z.strictObject({ from_account_id: id('e.g. A-1234'), to_account_id: id('e.g. A-5678'), amount }),
    run: (s: BankState, a) => {
      const from = getAcc(s, a.from_account_id);
      const to = getAcc(s, a.to_account_id);
      if (from.id === to.id) precondition('source and destination are the same account');
      if (from.customer_id !== to.customer_id) policyViolation('transfers only between accounts of the same customer');
      if (a.amount > MAX_TRANSFER) policyViolation(`transfers over ${MAX_TRANSFER} need a branch visit`);
      if (from.balance < a.amount) precondition(`account ${from.id} has only ${from.balance}`);
      debit(s, from, a.amount, `transfer to ${to.id}`);
      credit(s, to, a.amount, `transfer from ${from.id}`);
      return { from_balance: from.balance, to_balance: to.balance };
    } }),
  tool({ name: 'add_payee', description: 'Register a bill payee for a customer.', mutates: true,
    args: z.strictObject({ customer_id: id('e.g. C-123'), name: z.string().min(2) }),
    run: (s: BankState, a) => {
      const c = getCust(s, a.customer_id);
      if (Object.values(s.payees).some((p) => p.customer_id === c.id && p.name === a.name)) precondition(`payee ${a.name} already exists`);
      const pid = `Y-${s.next_payee++}`;
      s.payees[pid] = { id: pid, customer_id: c.id, name: a.name };
      return { payee_id: pid };
    } }),
  tool({ name: 'pay_bill', description: 'Pay a payee from a checking account (needs user confirmation).', mutates: true, confirm: true,
    args: z.strictObject({ account_id: id('e.g. A-1234'), payee_id: id('e.g. Y-123'), amount }),
    run: (s: BankState, a) => {
      const acc = getAcc(s, a.account_id);
      const p = own(s.payees, a.payee_id) ?? notFound(`payee ${a.payee_id} not found`);
      if (p.customer_id !== acc.customer_id) precondition(`payee ${p.id} belongs to another customer`);
      if (acc.kind !== 'checking') policyViolation('bills can only be paid from checking accounts');
      if (acc.balance < a.amount) precondition(`account ${acc.id} has only ${acc.balance}`);
      debit(s, acc, a.amount, `bill ${p.name}`);
      return { account_id: acc.id, balance: acc.balance };
    } }),
  tool({ name: 'get_card', description: 'Get a card and its status.', args: z.strictObject({ card_id: id('e.g. K-1234') }),
    run: (s: BankState, a) => {
      const k = getCard(s, a.card_id);
      return { card_id: k.id, account_id: k.account_id, status: k.status };
    } }),
  tool({ name: 'freeze_card', description: 'Freeze an active card.', mutates: true, args: z.strictObject({ card_id: id('e.g. K-1234') }),
    run: (s: BankState, a) => {
      const k = getCard(s, a.card_id);
      if (k.status !== 'active') precondition(`card ${k.id} is already ${k.status}`);
      k.status = 'frozen';
      return { card_id: k.id, status: k.status };
    } }),
  tool({ name: 'unfreeze_card', description: 'Unfreeze a frozen card (needs user confirmation).', mutates: true, confirm: true,
    args: z.strictObject({ card_id: id('e.g. K-1234') }),
    run: (s: BankState, a) => {
      const k = getCard(s, a.card_id);
      if (k.status !== 'frozen') precondition(`card ${k.id} is not frozen`);
      k.status = 'active';
      return { card_id: k.id, status: k.status };
    } }),
];

export const bankDistractors: T[] = [
  tool({ name: 'get_exchange_rate', description: 'Exchange rate between two currencies.',
    args: z.strictObject({ from: z.string().length(3), to: z.string().length(3) }), run: (_s: BankState, a) => ({ from: a.from, to: a.to, rate: 0.92 }) }),
  tool({ name: 'get_branch_hours', description: 'Opening hours of the branch in a city.', args: z.strictObject({ city: z.string().min(1) }),
    run: (_s: BankState, a) => ({ city: a.city, hours: '9-16' }) }),
];
