import type { WorldDef } from '../base.ts';
import { RETAIL_POLICY, retailHeldoutKinds, retailKinds } from './tasks.ts';
import { initRetail, retailDistractors, retailTools, type RetailState } from './tools.ts';

export const retailWorld: WorldDef<RetailState> = {
  name: 'retail', policy: RETAIL_POLICY, tools: retailTools, distractors: retailDistractors, init: initRetail, kinds: retailKinds,
  heldoutKinds: retailHeldoutKinds,
};
export type { RetailState };
