import type { Message } from '../../../schemas/message.ts';
import { pyDumps } from '../../worlds/tau/pyvalue.ts';
import { astCheck } from './checker.ts';
import { isRelevanceCategory, type BfclEntry } from './data.ts';
import { decodeReply, isCallList, isEmptyOutput } from './decode.ts';

/** One scored entry; `error_type` uses BFCL's own names (e.g. simple_function_checker:missing_required). */
export interface BfclVerdict {
  id: string;
  category: string;
  valid: boolean;
  error_type: string;
  error: string;
  /** The decoded calls as JSON (empty when decoding failed), capped so a huge reply cannot bloat the table. */
  decoded: string;
}

const MAX_DECODED = 4000;

export function scoreEntry(entry: BfclEntry, reply: Message): BfclVerdict {
  const base = { id: entry.id, category: entry.category };
  const d = decodeReply(reply);
  const decoded = d.ok ? pyDumps(d.calls).slice(0, MAX_DECODED) : '';
  if (isRelevanceCategory(entry.category)) {
    // BFCL: decoding failure, a non-call shape, [] or [{}] all mean "no function call".
    const called = d.ok && isCallList(d.calls) && !isEmptyOutput(d.calls);
    if (entry.category === 'live_relevance') {
      return { ...base, valid: called, error_type: called ? '' : 'relevance_error:decoder_failed', error: called ? '' : `expected a function call; ${d.ok ? 'output decoded to no call' : d.error}`, decoded };
    }
    return { ...base, valid: !called, error_type: called ? 'irrelevance_error:decoder_success' : '', error: called ? 'a function call was made where none is relevant' : '', decoded };
  }
  if (!d.ok) return { ...base, valid: false, error_type: 'ast_decoder:decoder_failed', error: d.error, decoded };
  if (!isCallList(d.calls)) return { ...base, valid: false, error_type: 'ast_decoder:decoder_wrong_output_format', error: 'decoded output is not a list of calls', decoded };
  const r = astCheck(entry.category, entry.functions, d.calls, entry.answers ?? []);
  return { ...base, valid: r.valid, error_type: r.error_type, error: r.error.join(' ').slice(0, MAX_DECODED), decoded };
}

/** Accuracy per category (BFCL reports per-category accuracies; leaderboard weights need categories we don't run). */
export function accuracyByCategory(verdicts: BfclVerdict[]): Array<{ category: string; entries: number; correct: number; accuracy: number }> {
  const by = new Map<string, { n: number; c: number }>();
  for (const v of verdicts) {
    const s = by.get(v.category) ?? { n: 0, c: 0 };
    s.n++; if (v.valid) s.c++;
    by.set(v.category, s);
  }
  return [...by].map(([category, s]) => ({ category, entries: s.n, correct: s.c, accuracy: s.c / s.n }));
}
