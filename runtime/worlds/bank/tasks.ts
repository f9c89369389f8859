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

/*
 * Held-out-only kinds (WorldDef.heldoutKinds): instruction templates no train split contains, from one lookup to
 * three calls, where ids come from earlier results, a fact is the user's to give, and the policy decides between
 * doing and refusing.
 */

const cardBalance: K = { name: 'card_balance', make(s, rng) {
  const k = rng.pick(Object.values(s.cards));
  return { instruction: `What is the balance of the account linked to card ${k.id}?`,
    actions: [{ name: 'get_card', arguments: { card_id: k.id } }, { name: 'get_account', arguments: { account_id: k.account_id } }],
    answer: (r) => ({ text: `The account ${k.account_id} linked to card ${k.id} has ${money(r[1].balance)}.`, outputs: [money(r[1].balance)] }) };
} };

const recentTransactions: K = { name: 'recent_transactions', make(s, rng) {
  const a = pickOrNull(rng, Object.values(s.accounts).filter((x) => s.transactions.filter((t) => t.account_id === x.id).length >= 2));
  if (!a) return null;
  const n = 2;
  return { instruction: `Show me the last ${n} transactions on account ${a.id}.`,
    actions: [{ name: 'list_transactions', arguments: { account_id: a.id, limit: n } }],
    answer: ([r]) => ({ text: `The last ${n} transactions on ${a.id}: ${r.map((t: { amount: number; memo: string }) => `${money(t.amount)} (${t.memo})`).join(', ')}.`,
      outputs: r.map((t: { amount: number }) => money(t.amount)) }) };
} };

/** The account ids come from the customer record; over the limit the same instruction must be refused. */
const savingsToChecking: K = { name: 'savings_to_checking', make(s, rng) {
  const c = rng.pick(Object.values(s.customers));
  const sav = accountsOf(s, c.id, 'savings')[0];
  const chk = accountsOf(s, c.id, 'checking')[0];
  const over = rng.chance(0.3);
  const amt = over ? MAX_TRANSFER + rng.int(1, 50) * 100 : rng.int(1, Math.floor(Math.min(sav.balance, MAX_TRANSFER) / 10)) * 10;
  if (amt <= 0) return null;
  const instruction = `I am customer ${c.id}. Move ${amt} from my savings account to my checking account.`;
  const move = { name: 'transfer', arguments: { from_account_id: sav.id, to_account_id: chk.id, amount: amt } };
  const lookup = { name: 'get_customer', arguments: { customer_id: c.id } };
  if (over) {
    return { instruction, tags: ['refusal'], actions: [lookup], forbidden: move,
      answer: () => ({ text: `I'm sorry, I cannot transfer ${amt}: transfers over ${MAX_TRANSFER} need a branch visit.`, outputs: [] }) };
  }
  return { instruction, actions: [lookup, { name: 'get_account', arguments: { account_id: sav.id } }, move],
    answer: (r) => ({ text: `Moved ${money(amt)} to ${chk.id}. Checking balance: ${money(r[2].to_balance)}.`, outputs: [money(r[2].to_balance)] }) };
} };

/** The payee is named, not numbered: its id comes from the customer record. */
const payPayeeByName: K = { name: 'pay_payee_by_name', make(s, rng) {
  const p = rng.pick(Object.values(s.payees));
  const acc = accountsOf(s, p.customer_id, 'checking')[0];
  const amt = rng.int(2, 9) * 10;
  if (acc.balance < amt) return null;
  return {
    instruction: `I am customer ${p.customer_id}. Pay ${amt} to ${p.name} from my checking account ${acc.id}.`,
    actions: [
      { name: 'get_customer', arguments: { customer_id: p.customer_id } },
      { name: 'get_account', arguments: { account_id: acc.id } },
      { name: 'pay_bill', arguments: { account_id: acc.id, payee_id: p.id, amount: amt } },
    ],
    answer: (r) => ({ text: `Paid ${money(amt)} to ${p.name} (${p.id}). Balance of ${acc.id}: ${money(r[2].balance)}.`, outputs: [money(r[2].balance)] }),
  };
} };

/** Three calls after a question: freeze the card the user names, then read its account. */
const freezeAskBalance: K = { name: 'freeze_ask_balance', make(s, rng) {
  const k = pickOrNull(rng, Object.values(s.cards).filter((c) => c.status === 'active'));
  if (!k) return null;
  return {
    instruction: 'I lost my card. Please freeze it and tell me the balance of its account.', hidden: { card_id: k.id },
    actions: [
      { name: 'get_card', arguments: { card_id: k.id } },
      { name: 'freeze_card', arguments: { card_id: k.id } },
      { name: 'get_account', arguments: { account_id: k.account_id } },
    ],
    answer: (r) => ({ text: `Card ${k.id} is now frozen. The balance of ${k.account_id} is ${money(r[2].balance)}.`, outputs: ['frozen', money(r[2].balance)] }),
  };
} };

export const bankHeldoutKinds: K[] = [cardBalance, recentTransactions, savingsToChecking, payPayeeByName, freezeAskBalance];

export const BANK_POLICY = [
  'You are a bank assistant. Policy:',
  '- Before transfer, pay_bill or unfreeze_card, describe the action and ask the user to confirm; call only after they say yes.',
  `- Transfers over ${MAX_TRANSFER} need a branch visit: refuse.`,
  '- Bills can only be paid from checking accounts: refuse others.',
  '- Freeze a lost card right away (no confirmation needed).',
  '- If a needed fact (like a card id) is missing, ask the user for it.',
].join('\n');
