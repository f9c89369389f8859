import PQueue from 'p-queue';
import { setMaxListeners } from 'node:events';
import { z } from 'zod';
import { files, operator, optional, table } from '../runtime/engine/operator.ts';
import { AGENT_ENV, AgentParams, chooseAgent } from '../runtime/eval/agent.ts';
import { BFCL_CATEGORIES, bfclTools, isRelevanceCategory, loadBfcl, type BfclEntry } from '../runtime/eval/bfcl/data.ts';
import { renderAnswer } from '../runtime/eval/bfcl/render.ts';
import { scoreEntry } from '../runtime/eval/bfcl/score.ts';
import type { Message } from '../schemas/message.ts';
import { BfclVerdictRow } from '../runtime/eval/results.ts';

const BATCH = 50;

/*
 * eval-bfcl: BFCL v4 single-turn categories. Each entry's functions are offered as tools, the reply (native tool
 * calls, or a JSON / Python-syntax call list in text) is decoded and scored with BFCL's AST rules
 * (runtime/eval/bfcl/checker.ts). A request that fails after retries is a scored failure
 * (error_type 'request_error'), never a crashed node. Durable batches of 50 entries: a rerun resumes.
 */
export const evalBfcl = operator({
  name: 'eval-bfcl',
  version: 3, // 3: agent 'model' runs with the model's own context (max_context), engine params, tool_call_format
  params: AgentParams.extend({
    categories: z.array(z.enum(BFCL_CATEGORIES)).default([...BFCL_CATEGORIES]),
    /** First N entries per category (deterministic subset); all when absent. */
    limit: z.number().int().min(1).optional(),
    concurrency: z.number().int().min(1).default(8),
  }),
  inputs: { model: optional(files()) },
  output: table(BfclVerdictRow, 'BfclVerdict'),
  env: AGENT_ENV,
  async run({ params: p, inputs, out, ctx }) {
    const agent = await chooseAgent(p, inputs.model?.dir, ctx.env, 'eval-bfcl');
    const entries = p.categories.flatMap((c) => loadBfcl(c).slice(0, p.limit));
    ctx.progress.total(entries.length, 'entries');
    setMaxListeners(0, ctx.signal); // every in-flight request / sandbox listens for the node's abort
    const queue = new PQueue({ concurrency: p.concurrency });
    for (let b = 0; b * BATCH < entries.length; b++) {
      const id = `b${String(b).padStart(5, '0')}`;
      const chunk = entries.slice(b * BATCH, (b + 1) * BATCH);
      if (out.hasBatch(id)) { ctx.progress.tick(chunk.length); continue; }
      const rows = await Promise.all(chunk.map((e) => queue.add(async () => {
        const verdict = await answer(e, agent, ctx.signal).then((m) => scoreEntry(e, m), (err: Error) => requestError(e, err));
        ctx.progress.tick();
        return verdict;
      })));
      await out.writeBatch(id, rows as z.input<typeof BfclVerdictRow>[]);
    }
  },
});

async function answer(e: BfclEntry, agent: Awaited<ReturnType<typeof chooseAgent>>, signal: AbortSignal): Promise<Message> {
  if (agent !== 'oracle') return agent.respond({ messages: e.messages, tools: bfclTools(e), signal, idempotencyKey: `bfcl:${e.id}` });
  if (isRelevanceCategory(e.category)) {
    return e.category === 'live_relevance' ? { ...renderAnswer({ ...e, answers: [{ [e.functions[0].name]: {} }] }) } : { role: 'assistant', content: 'None of the functions apply.', tool_calls: [], tool_call_id: null, name: null };
  }
  return renderAnswer(e);
}

function requestError(e: BfclEntry, err: Error) {
  return { id: e.id, category: e.category, valid: false, error_type: 'request_error', error: err.message.slice(0, 1000), decoded: '' };
}
