import type { TaskDraft, TaskKind } from '../base.ts';
import { money } from '../money.ts';
import type { Rng } from '../../engine/rng.ts';
import { MAX_TRANSFER, PAYEE_NAMES, type Account, type BankState } from './tools.ts';

/* Bank task kinds, from a single lookup to six calls. */

type K = TaskKind<BankState>;
const pickOrNull = <T>(rng: Rng, xs: T[]): T | null => (xs.length ? rng.pick(xs) : null);
const accountsOf = (s: BankState, cid: string, kind?: Account['kind']) =>
  Object.values(s.accounts).filter((a) => a.customer_id === cid && (!kind || a.kind === kind)).sort((a, b) => a.id.localeCompare(b.id));

const balance: K = { name: 'balance', make(s, rng) {
  const a = rng.pick(Object.values(s.accounts));
  return { instruction: `What is the balance of account ${a.id}?`, actions: [{ name: 'get_account', arguments: { account_id: a.id } }],
    answer: ([r]) => ({ text: `Account ${a.id} has a balance of ${money(r.balance)}.`, outputs: [money(r.balance)] }) };
} };

const lastTransaction: K = { name: 'last_transaction', make(s, rng) {
  const a = rng.pick(Object.values(s.accounts));
  return { instruction: `What was the last transaction on account ${a.id}?`,
    actions: [{ name: 'list_transactions', arguments: { account_id: a.id, limit: 1 } }],
    answer: ([r]) => ({ text: `The last transaction on ${a.id} was ${money(r[0].amount)} (${r[0].memo}).`, outputs: [money(r[0].amount)] }) };
} };

const freezeCard: K = { name: 'freeze_card', make(s, rng) {
  const k = pickOrNull(rng, Object.values(s.cards).filter((c) => c.status === 'active'));
  if (!k) return null;
  const ask = rng.chance(0.4);
  const d: TaskDraft = { instruction: ask ? 'I lost my card. Please freeze it.' : `I lost my card ${k.id}. Please freeze it.`,
    actions: [{ name: 'get_card', arguments: { card_id: k.id } }, { name: 'freeze_card', arguments: { card_id: k.id } }],
    answer: () => ({ text: `Card ${k.id} is now frozen.`, outputs: ['frozen'] }) };
  if (ask) d.hidden = { card_id: k.id };
  return d;
} };

const unfreezeCard: K = { name: 'unfreeze_card', make(s, rng) {
  const k = pickOrNull(rng, Object.values(s.cards).filter((c) => c.status === 'frozen'));
  if (!k) return null;
  return { instruction: `I found my card ${k.id}. Please unfreeze it.`,
    actions: [{ name: 'get_card', arguments: { card_id: k.id } }, { name: 'unfreeze_card', arguments: { card_id: k.id } }],
    answer: () => ({ text: `Card ${k.id} is active again.`, outputs: ['active'] }) };
} };

const transfer: K = { name: 'transfer', make(s, rng) {
  const c = rng.pick(Object.values(s.customers));
  const [from, to] = rng.shuffle(accountsOf(s, c.id));
  const amt = rng.int(1, Math.floor(Math.min(from.balance, MAX_TRANSFER) / 10)) * 10;
  if (amt <= 0) return null;
  return {
    instruction: `I am customer ${c.id}. Transfer ${amt} from account ${from.id} to account ${to.id}.`,
    actions: [
      { name: 'get_customer', arguments: { customer_id: c.id } },
      { name: 'get_account', arguments: { account_id: from.id } },
      { name: 'transfer', arguments: { from_account_id: from.id, to_account_id: to.id, amount: amt } },
    ],
    answer: (r) => ({ text: `Transferred ${money(amt)}. New balance of ${from.id}: ${money(r[2].from_balance)}.`, outputs: [money(r[2].from_balance)] }),
  };
} };

/** Six calls: look up, add two payees, pay each, read the new balance. */
const payNewPayees: K = { name: 'pay_new_payees', make(s, rng) {
  const c = rng.pick(Object.values(s.customers));
  const acc = accountsOf(s, c.id, 'checking')[0];
  const have = new Set(Object.values(s.payees).filter((p) => p.customer_id === c.id).map((p) => p.name));
  const [n1, n2] = rng.sample(PAYEE_NAMES.filter((n) => !have.has(n)), 2);
  const amt = rng.int(2, 9) * 10;
  if (acc.balance < 2 * amt) return null;
  const [y1, y2] = [`Y-${s.next_payee}`, `Y-${s.next_payee + 1}`];
  return {
    instruction: `I am customer ${c.id}. Add payees ${n1} and ${n2}, pay each ${amt} from my checking account ${acc.id}, then tell me the balance.`,
    actions: [
      { name: 'get_customer', arguments: { customer_id: c.id } },
      { name: 'add_payee', arguments: { customer_id: c.id, name: n1 } },
      { name: 'pay_bill', arguments: { account_id: acc.id, payee_id: y1, amount: amt } },
      { name: 'add_payee', arguments: { customer_id: c.id, name: n2 } },
      { name: 'pay_bill', arguments: { account_id: acc.id, payee_id: y2, amount: amt } },
      { name: 'get_account', arguments: { account_id: acc.id } },
    ],
    answer: (r) => ({ text: `Paid ${n1} (${y1}) and ${n2} (${y2}). Balance of ${acc.id}: ${money(r[5].balance)}.`, outputs: [money(r[5].balance)] }),
  };
} };

const refuseBigTransfer: K = { name: 'refuse_big_transfer', make(s, rng) {
  const c = rng.pick(Object.values(s.customers));
  const [from, to] = rng.shuffle(accountsOf(s, c.id));
  const amt = MAX_TRANSFER + rng.int(1, 50) * 100;
  return { instruction: `I am customer ${c.id}. Transfer ${amt} from account ${from.id} to account ${to.id}.`, tags: ['refusal'],
    actions: [{ name: 'get_customer', arguments: { customer_id: c.id } }],
    forbidden: { name: 'transfer', arguments: { from_account_id: from.id, to_account_id: to.id, amount: amt } },
    answer: () => ({ text: `I'm sorry, I cannot transfer ${amt}: transfers over ${MAX_TRANSFER} need a branch visit.`, outputs: [] }) };
} };

const refuseSavingsBill: K = { name: 'refuse_savings_bill', make(s, rng) {
  const p = rng.pick(Object.values(s.payees));
  const sav = accountsOf(s, p.customer_id, 'savings')[0];
  const amt = rng.int(2, 9) * 10;
  return { instruction: `Pay ${amt} to payee ${p.id} from my savings account ${sav.id}.`, tags: ['refusal'],
    actions: [{ name: 'get_account', arguments: { account_id: sav.id } }],
    forbidden: { name: 'pay_bill', arguments: { account_id: sav.id, payee_id: p.id, amount: amt } },
    answer: () => ({ text: `I'm sorry, I cannot pay bills from savings account ${sav.id}: bills can only be paid from checking accounts.`, outputs: [] }) };
} };

export const bankKinds: K[] = [balance, lastTransaction, freezeCard, unfreezeCard, transfer, payNewPayees, refuseBigTransfer, refuseSavingsBill];

export const BANK_POLICY = [
  'You are a bank assistant. Policy:',
  '- Before transfer, pay_bill or unfreeze_card, describe the action and ask the user to confirm; call only after they say yes.',
  `- Transfers over ${MAX_TRANSFER} need a branch visit: refuse.`,
  '- Bills can only be paid from checking accounts: refuse others.',
  '- Freeze a lost card right away (no confirmation needed).',
  '- If a needed fact (like a card id) is missing, ask the user for it.',
].join('\n');
