/*
 * Trajectories → packed SFT sequences for the trainer (one row per packed sequence of ≤ max_len tokens).
 *
 * Steps: keep the wanted split → sort by id (result independent of upstream row order) → mix by source or world
 * (downsample every group to the requested ratios, seeded) → cap trajectories per task (seeded) → tokenize with
 * the model's chat template (runtime/agent/tokenize.ts: token-in/token-out, assistant-only mask) → apply the
 * truncation policy → pack (best-fit decreasing) → shuffle packs (seeded).
 *
 * Row contract for the trainer: label of position i is input_ids[i], trained iff loss_mask[i] = 1 (the trainer
 * shifts). Packed samples must not attend to each other: seq_lens gives the boundaries (position_ids restart at 0
 * per sample, so varlen / block-diagonal attention can be derived from either). A sample's first token is always
 * a masked <|im_start|>, so no loss ever crosses a boundary. Rows are not padded.
 */
import { z } from 'zod';
import { Trajectory } from '../schemas/trajectory.ts';
import { model, operator, optional, table } from '../runtime/engine/operator.ts';
import { loadChatTokenizer, tokenizeConversation, type ChatTokenizer } from '../runtime/agent/tokenize.ts';
import { seededRandom } from '../runtime/agent/engines/engine.ts';

export const SftShardRow = z.object({
  input_ids: z.array(z.number().int()),
  loss_mask: z.array(z.number().int().min(0).max(1)),
  position_ids: z.array(z.number().int()),
  seq_lens: z.array(z.number().int()),
  task_ids: z.array(z.string()),
  sources: z.array(z.string()),
  trajectory_ids: z.array(z.string()),
});
export type SftShardRow = z.infer<typeof SftShardRow>;

export const SftShardParams = z.object({
  max_len: z.number().int().min(16).default(4096),
  /**
   * Over-long samples: 'truncate' keeps the first max_len tokens (counted `truncated`; if none of them is trained
   * the sample is dropped and counted `dropped_truncated_no_target`), 'drop' skips them (`dropped_too_long`).
   */
  truncation: z.enum(['truncate', 'drop']).default('drop'),
  /** Group key for `mix`. */
  mix_by: z.enum(['source', 'world']).default('source'),
  /** Relative weights per group, e.g. {synth: 3, rollout: 1}; groups not listed are left out. Empty = take all. */
  mix: z.record(z.string(), z.number().min(0)).default({}),
  max_per_task: z.number().int().min(1).nullable().default(null),
  split: z.enum(['train', 'heldout', 'all']).default('train'),
  seed: z.number().int().default(0),
  /** Jinja source that replaces the model's own chat template (e.g. a tools-aware one for a model whose template drops tools). */
  chat_template: z.string().min(1).nullable().default(null),
});
export type SftShardParams = z.infer<typeof SftShardParams>;

export interface Sample { ids: Int32Array; mask: Uint8Array; task_id: string; source: string; trajectory_id: string }
export type Counts = Record<string, number>;

export function shuffle<T>(xs: T[], rand: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Split filter, mix ratios and per-task cap; returns the chosen trajectories in a seeded order. */
export function selectTrajectories(all: Trajectory[], p: SftShardParams, counts: Counts): Trajectory[] {
  const rand = seededRandom(p.seed);
  let ts = all.filter((t) => p.split === 'all' || t.split === p.split).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  counts.filtered_split = all.length - ts.length;
  const weights = Object.entries(p.mix).filter(([, w]) => w > 0);
  if (weights.length) {
    const groups = new Map<string, Trajectory[]>(weights.map(([k]) => [k, []]));
    for (const t of ts) groups.get(p.mix_by === 'source' ? t.source : t.world)?.push(t);
    const empty = weights.filter(([k]) => groups.get(k)!.length === 0).map(([k]) => k);
    if (empty.length) {
      const present = [...new Set(ts.map((t) => (p.mix_by === 'source' ? t.source : t.world)))];
      throw new Error(`build-sft-shards: param mix names ${p.mix_by} ${empty.join(', ')} but no ${p.split} trajectory has it ` +
        `(present: ${present.join(', ') || 'none'}); fix params.mix`);
    }
    // largest total whose per-group share fits in every group
    const total = Math.min(...weights.map(([k, w]) => groups.get(k)!.length / w)) * weights.reduce((s, [, w]) => s + w, 0);
    const wsum = weights.reduce((s, [, w]) => s + w, 0);
    const kept = weights.flatMap(([k, w]) => shuffle(groups.get(k)!, rand).slice(0, Math.floor((total * w) / wsum + 1e-9)));
    counts.mix_dropped = ts.length - kept.length;
    ts = kept;
  }
  ts = shuffle(ts, rand);
  if (p.max_per_task !== null) {
    const per = new Map<string, number>();
    const before = ts.length;
    ts = ts.filter((t) => {
      const n = (per.get(t.task_id) ?? 0) + 1;
      per.set(t.task_id, n);
      return n <= p.max_per_task!;
    });
    counts.per_task_dropped = before - ts.length;
  }
  return ts;
}

/** Tokenizes one trajectory and applies the truncation policy; null when it yields nothing to train on. */
export function toSample(ct: ChatTokenizer, t: Trajectory, p: SftShardParams, counts: Counts, where: string): Sample | null {
  let tok;
  try {
    tok = tokenizeConversation(ct, t.messages, t.tools);
  } catch (e) {
    throw new Error(`${where} (trajectory ${t.id}): ${(e as Error).message}`);
  }
  counts.straddled = (counts.straddled ?? 0) + tok.straddled;
  let { ids, mask } = tok;
  counts.shortest_len = Math.min(counts.shortest_len ?? Infinity, ids.length);
  counts.longest_len = Math.max(counts.longest_len ?? 0, ids.length);
  if (ids.length > p.max_len) {
    if (p.truncation === 'drop') return bump(counts, 'dropped_too_long');
    ids = ids.slice(0, p.max_len);
    mask = mask.slice(0, p.max_len);
    if (!mask.some((m) => m === 1)) return bump(counts, 'dropped_truncated_no_target');
    bump(counts, 'truncated');
  }
  if (!mask.some((m) => m === 1)) return bump(counts, 'dropped_no_target');
  return { ids: Int32Array.from(ids), mask: Uint8Array.from(mask), task_id: t.task_id, source: t.source, trajectory_id: t.id };
}

function bump(counts: Counts, k: string): null {
  counts[k] = (counts[k] ?? 0) + 1;
  return null;
}

/**
 * Best-fit decreasing: longest first, each into the open pack with the least room that still fits it.
 * A segment tree over "room left" finds that pack in O(log max_len).
 */
export function packSamples(samples: Sample[], maxLen: number): Sample[][] {
  const order = samples.map((_, i) => i).sort((a, b) => samples[b].ids.length - samples[a].ids.length || a - b);
  const size = 1 << Math.ceil(Math.log2(maxLen + 1));
  const tree = new Int32Array(2 * size); // count of packs per room value, summed over ranges
  const byRoom = new Map<number, number[]>();
  const packs: Sample[][] = [];
  const add = (room: number, d: number) => { for (let i = room + size; i >= 1; i >>= 1) tree[i] += d; };
  const firstAtLeast = (need: number): number => {
    // leftmost leaf ≥ need with a nonzero count
    const go = (node: number, lo: number, hi: number): number => {
      if (hi < need || tree[node] === 0) return -1;
      if (lo === hi) return lo;
      const mid = (lo + hi) >> 1;
      const l = go(2 * node, lo, mid);
      return l >= 0 ? l : go(2 * node + 1, mid + 1, hi);
    };
    return go(1, 0, size - 1);
  };
  for (const i of order) {
    const len = samples[i].ids.length;
    const room = firstAtLeast(len);
    let pack: number;
    if (room < 0) {
      pack = packs.push([]) - 1;
    } else {
      pack = byRoom.get(room)!.pop()!;
      add(room, -1);
    }
    packs[pack].push(samples[i]);
    const left = (room < 0 ? maxLen : room) - len;
    if (left > 0) {
      add(left, 1);
      if (!byRoom.has(left)) byRoom.set(left, []);
      byRoom.get(left)!.push(pack);
    }
  }
  return packs;
}

export function packToRow(pack: Sample[]): SftShardRow {
  const row: SftShardRow = { input_ids: [], loss_mask: [], position_ids: [], seq_lens: [], task_ids: [], sources: [], trajectory_ids: [] };
  for (const s of pack) {
    for (let i = 0; i < s.ids.length; i++) {
      row.input_ids.push(s.ids[i]);
      row.loss_mask.push(s.mask[i]);
      row.position_ids.push(i);
    }
    row.seq_lens.push(s.ids.length);
    row.task_ids.push(s.task_id);
    row.sources.push(s.source);
    row.trajectory_ids.push(s.trajectory_id);
  }
  return row;
}

/** Why nothing is left to train on, and the fix: a 0-row table would let SFT "succeed" on no data. */
function emptyReason(chosen: number, p: SftShardParams, counts: Counts): string {
  const head = `build-sft-shards: no trainable sample left of ${counts.trajectories_in} trajectories`;
  if (chosen === 0) {
    return `${head}: the split/mix/per-task filters kept none (split '${p.split}' dropped ${counts.filtered_split ?? 0}, ` +
      `mix dropped ${counts.mix_dropped ?? 0}); fix params.split or params.mix`;
  }
  const tooLong = (counts.dropped_too_long ?? 0) + (counts.dropped_truncated_no_target ?? 0);
  if (tooLong > 0) {
    return `${head}: ${tooLong} of ${chosen} selected samples are longer than max_len ${p.max_len} for this tokenizer ` +
      `(shortest sample ${counts.shortest_len} tokens, longest ${counts.longest_len}); raise params.max_len to at least ` +
      `${counts.shortest_len}${p.truncation === 'drop' ? " or set truncation: 'truncate'" : ''}`;
  }
  return `${head}: all ${chosen} selected samples have no assistant token to train on (dropped_no_target ` +
    `${counts.dropped_no_target ?? 0}); check the trajectories' assistant turns`;
}

/** The whole transformation as a pure function (the operator adds I/O, metrics and progress). */
export function buildSftRows(ct: ChatTokenizer, trajectories: Trajectory[], p: SftShardParams, counts: Counts = {}, onSample?: () => void): SftShardRow[] {
  counts.trajectories_in = trajectories.length;
  const chosen = selectTrajectories(trajectories, p, counts);
  const samples: Sample[] = [];
  chosen.forEach((t, i) => {
    const s = toSample(ct, t, p, counts, `build-sft-shards: selected trajectory ${i}`);
    if (s) samples.push(s);
    onSample?.();
  });
  if (samples.length === 0 && trajectories.length > 0) throw new Error(emptyReason(chosen.length, p, counts));
  const packs = shuffle(packSamples(samples, p.max_len), seededRandom(p.seed + 1));
  const rows = packs.map(packToRow);
  counts.samples = samples.length;
  counts.packs = rows.length;
  counts.tokens = rows.reduce((s, r) => s + r.input_ids.length, 0);
  counts.trained_tokens = rows.reduce((s, r) => s + r.loss_mask.reduce((a, b) => a + b, 0), 0);
  counts.pack_fill = rows.length ? counts.tokens / (rows.length * p.max_len) : 0;
  return rows;
}

export const buildSftShards = operator({
  name: 'build-sft-shards',
  version: 2,
  description: 'Tokenize trajectories with the model chat template (assistant-only loss mask) and pack them into ≤ max_len sequences.',
  params: SftShardParams,
  /** extra: a second trajectory table taken as is (e.g. synthesize-calls' rows, which no world verifies). */
  inputs: { trajectories: table(Trajectory), extra: optional(table(Trajectory)), model: model() },
  output: table(SftShardRow),
  async run({ params, inputs, out, ctx }) {
    const ct = loadChatTokenizer(inputs.model.dir, { chatTemplate: params.chat_template ?? undefined, requireTools: true });
    const trajectories = [...await inputs.trajectories.all(), ...(inputs.extra ? await inputs.extra.all() : [])];
    ctx.progress.total(trajectories.length, 'trajectories');
    const counts: Counts = {};
    const rows = buildSftRows(ct, trajectories, params, counts, () => ctx.progress.tick());
    ctx.progress.set(trajectories.length); // the unselected ones are done too
    for (let i = 0; i < rows.length; i += 256) await out.write(rows.slice(i, i + 256));
    for (const [k, v] of Object.entries(counts)) ctx.metric(`sft/${k}`, v);
    ctx.log(`build-sft-shards: ${counts.samples} samples → ${counts.packs} packs of ≤ ${params.max_len} tokens ` +
      `(fill ${(counts.pack_fill * 100).toFixed(1)}%), truncated ${counts.truncated ?? 0}, dropped too long ` +
      `${(counts.dropped_too_long ?? 0) + (counts.dropped_truncated_no_target ?? 0)}, no target ${counts.dropped_no_target ?? 0}`);
  },
});
