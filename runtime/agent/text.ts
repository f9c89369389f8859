/** Lone UTF-16 surrogates: the in-memory form of text that cannot be encoded as UTF-8. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

export const isWellFormed = (s: string): boolean => !LONE_SURROGATE.test(s);
export const toWellFormed = (s: string): string => s.replace(LONE_SURROGATES, '\uFFFD');

/** True if any string inside a JSON-like value holds a lone surrogate (JSON.stringify would hide it as \udxxx). */
export function hasInvalidText(v: unknown, depth = 0): boolean {
  if (typeof v === 'string') return !isWellFormed(v);
  if (depth > 32 || !v || typeof v !== 'object') return false;
  if (Array.isArray(v)) return v.some((x) => hasInvalidText(x, depth + 1));
  return Object.entries(v).some(([k, x]) => !isWellFormed(k) || hasInvalidText(x, depth + 1));
}
