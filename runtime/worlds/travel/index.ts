import type { WorldDef } from '../base.ts';
import { TRAVEL_POLICY, travelKinds } from './tasks.ts';
import { initTravel, travelDistractors, travelTools, type TravelState } from './tools.ts';

export const travelWorld: WorldDef<TravelState> = {
  name: 'travel', policy: TRAVEL_POLICY, tools: travelTools, distractors: travelDistractors, init: initTravel, kinds: travelKinds,
};
export type { TravelState };
