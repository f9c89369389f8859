import type { Rng } from '../engine/rng.ts';

/** Small vocabularies for seeded databases: short, distinct words a tiny model can copy verbatim. */
export const FIRST = ['ana', 'ben', 'carla', 'dan', 'eva', 'finn', 'gina', 'hugo', 'iris', 'jon', 'kim', 'leo', 'mia', 'noah', 'olga', 'paul'];
export const LAST = ['smith', 'lopez', 'khan', 'meyer', 'rossi', 'novak', 'silva', 'tanaka', 'dubois', 'berg'];
export const STREETS = ['oak st', 'elm st', 'pine ave', 'main st', 'lake rd', 'hill rd', 'river ln', 'park ave'];
export const CITIES = ['austin', 'boston', 'denver', 'miami', 'seattle', 'chicago', 'portland', 'atlanta'];

/** `n` distinct ids like "O-4821" drawn from [lo, hi]. */
export function uniqueIds(rng: Rng, prefix: string, n: number, lo: number, hi: number): string[] {
  const seen = new Set<number>();
  while (seen.size < n) seen.add(rng.int(lo, hi));
  return [...seen].map((x) => `${prefix}-${x}`);
}

export function personName(rng: Rng, used: Set<string>): { first: string; last: string } {
  for (;;) {
    const first = rng.pick(FIRST);
    const last = rng.pick(LAST);
    if (!used.has(first + last)) {
      used.add(first + last);
      return { first, last };
    }
  }
}

export const address = (rng: Rng): string => `${rng.int(1, 99)} ${rng.pick(STREETS)}, ${rng.pick(CITIES)}`;
