import type { WorldDef } from '../base.ts';
import { BANK_POLICY, bankHeldoutKinds, bankKinds } from './tasks.ts';
import { bankDistractors, bankTools, initBank, type BankState } from './tools.ts';

export const bankWorld: WorldDef<BankState> = {
  name: 'bank', policy: BANK_POLICY, tools: bankTools, distractors: bankDistractors, init: initBank, kinds: bankKinds,
  heldoutKinds: bankHeldoutKinds,
};
export type { BankState };
