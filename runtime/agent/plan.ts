import type { Task } from '../../schemas/task.ts';
import type { Action } from '../worlds/base.ts';
import { Rng } from '../engine/rng.ts';

/*
 * The scripted teacher's plan: one step per assistant message, derived from the task's gold actions. Before the
 * first call that needs a hidden fact it asks for it; before every confirmation-gated call it asks for a yes.
 * Noise rewrites the plan in one labelled way so offline runs also yield realistic failures.
 */

export type Step =
  | { kind: 'ask'; key: string }
  | { kind: 'confirm'; action: Action }
  | { kind: 'call'; action: Action }
  | { kind: 'answer'; text: string };

export const NOISE_KINDS = ['wrong_arg', 'skip_confirm', 'premature', 'hallucinate'] as const;
export type NoiseKind = (typeof NOISE_KINDS)[number];

export interface NoiseOptions {
  /** Probability that a trajectory carries one mistake (0 = always the gold plan). */
  rate: number;
  kinds?: readonly NoiseKind[];
}

export const askText = (key: string): string => `Could you tell me your ${key.replace(/_/g, ' ')}?`;
export const confirmText = (a: Action): string =>
  `I will call ${a.name} with ${JSON.stringify(a.arguments)}. Shall I proceed? (yes/no)`;
export const PREMATURE_TEXT = 'I have taken care of your request.';

/** For tasks made elsewhere without a reference answer: a refusal or the required outputs. */
const fallbackAnswer = (task: Task): string =>
  task.goal.must_refuse ? "I'm sorry, I cannot do that under our policy." : `Done. ${task.goal.required_outputs.join(', ')}`.trim();

export function goldPlan(task: Task, gated: ReadonlySet<string>): Step[] {
  const steps: Step[] = [];
  const asked = new Set<string>();
  const hidden = Object.entries(task.hidden_facts);
  for (const action of task.goal.gold_actions) {
    const argText = JSON.stringify(action.arguments);
    for (const [key, value] of hidden) {
      if (!asked.has(key) && argText.includes(JSON.stringify(value))) {
        asked.add(key);
        steps.push({ kind: 'ask', key });
      }
    }
    if (gated.has(action.name)) steps.push({ kind: 'confirm', action });
    steps.push({ kind: 'call', action });
  }
  for (const [key] of hidden) if (!asked.has(key)) steps.unshift({ kind: 'ask', key });
  steps.push({ kind: 'answer', text: task.goal.reference_answer ?? fallbackAnswer(task) });
  return steps;
}

/**
 * Perturbs one argument so the call fails or changes the wrong thing: on a mutating call a number grows (wrong
 * amount → different final state); on a read-only call an id gets a digit appended (points nowhere → not_found).
 */
function perturb(a: Action, mutating: boolean): Action | null {
  const entries = Object.entries(a.arguments);
  const num = entries.find(([, v]) => typeof v === 'number');
  const str = entries.find(([, v]) => typeof v === 'string');
  if (num && (mutating || !str)) return { name: a.name, arguments: { ...a.arguments, [num[0]]: (num[1] as number) + 1 } };
  if (str) return { name: a.name, arguments: { ...a.arguments, [str[0]]: `${str[1] as string}9` } };
  return null;
}

/** Which of a world's tools need confirmation and which change state. */
export interface ToolKinds { gated: ReadonlySet<string>; mutating: ReadonlySet<string> }

function applyNoise(steps: Step[], kind: NoiseKind, rng: Rng, tk: ToolKinds): Step[] | null {
  const calls = steps.map((s, i) => [s, i] as const).filter(([s]) => s.kind === 'call');
  switch (kind) {
    case 'skip_confirm': {
      const i = steps.findIndex((s) => s.kind === 'confirm');
      return i < 0 ? null : steps.filter((_, j) => j !== i);
    }
    case 'wrong_arg': {
      const act = (s: Step) => (s as { action: Action }).action;
      const mutating = calls.filter(([s]) => tk.mutating.has(act(s).name) && perturb(act(s), true));
      const pool = mutating.length ? mutating : calls.filter(([s]) => perturb(act(s), false));
      if (!pool.length) return null;
      const [s, i] = rng.pick(pool);
      const bad = perturb(act(s), tk.mutating.has(act(s).name))!;
      // the confirmation (if any) describes the wrong call too, so the mistake is the argument, not the confirmation
      return steps.map((x, j) => (j === i ? { kind: 'call', action: bad } : j === i - 1 && x.kind === 'confirm' ? { kind: 'confirm', action: bad } : x));
    }
    case 'premature': {
      if (!calls.length) return null;
      const cut = calls[Math.floor(calls.length / 2)][1];
      return [...steps.slice(0, cut), { kind: 'answer', text: PREMATURE_TEXT }];
    }
    case 'hallucinate': {
      const at = rng.int(0, steps.length - 1);
      const fake: Step = { kind: 'call', action: { name: rng.pick(['lookup_everything', 'get_account_details', 'search_database']), arguments: {} } };
      return [...steps.slice(0, at), fake, ...steps.slice(at)];
    }
  }
}

/** The plan one trajectory follows, and the noise it carries (null = clean). Deterministic in (task, seed). */
export function planFor(task: Task, tk: ToolKinds, seed: number, noise: NoiseOptions): { steps: Step[]; noise: NoiseKind | null } {
  const steps = goldPlan(task, tk.gated);
  const rng = Rng.derive('noise', task.id, seed);
  if (!(noise.rate > 0) || !rng.chance(noise.rate)) return { steps, noise: null };
  for (const kind of rng.shuffle(noise.kinds ?? NOISE_KINDS)) {
    const noisy = applyNoise(steps, kind, rng, tk);
    if (noisy) return { steps: noisy, noise: kind };
  }
  return { steps, noise: null };
}
