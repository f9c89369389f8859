import PQueue from 'p-queue';
import { setMaxListeners } from 'node:events';
import { z } from 'zod';
import { files, operator, optional, table } from '../runtime/engine/operator.ts';
import { AGENT_ENV, AgentParams, chooseAgent } from '../runtime/eval/agent.ts';
import { assertCodeSandbox, extractCode, runCodeTask } from '../runtime/eval/code/evaluate.ts';
import { loadHumanEval, loadMbpp, loadQuixBugs, type CodeTask } from '../runtime/eval/code/tasks.ts';
import type { ChatPolicy } from '../runtime/agent/policy.ts';
import { CodeSampleRow } from '../runtime/eval/results.ts';

const INSTRUCTION: Record<CodeTask['benchmark'], string> = {
  humaneval: 'Complete the following Python function. Reply with the complete function in one ```python block.',
  mbpp: 'Reply with the Python code only, in one ```python block.',
  quixbugs: 'Reply with the corrected program only, in one ```python block.',
};

/*
 * eval-code: HumanEval, MBPP (sanitized) or QuixBugs. `samples` completions per task, each run in the sandbox
 * (runtime/sandbox: namespaces, unprivileged uid, rlimits, wall timeout, no network, clean env). Where the machine
 * cannot isolate the code the node fails before asking the model anything (the sandbox's refusal says how to opt in).
 * A pass is the harness's proof line (runtime/sandbox/harness.ts), never the candidate's exit code. A failed
 * request or a reply without code is a failed sample with its reason. Batches of 20 tasks are durable, so a rerun
 * resumes.
 *
 * v3: passes are proven by the harness (HumanEval/MBPP candidates run in their own process, only plain data crosses);
 * refuses to run where the sandbox cannot isolate.
 */
export const evalCode = operator({
  name: 'eval-code',
  version: 4, // 4: agent 'model' runs with the model's own context (max_context), engine params, tool_call_format
  params: AgentParams.extend({
    benchmark: z.enum(['humaneval', 'mbpp', 'quixbugs']),
    samples: z.number().int().min(1).default(1),
    limit: z.number().int().min(1).optional(),
    concurrency: z.number().int().min(1).default(4),
  }),
  inputs: { model: optional(files()) },
  output: table(CodeSampleRow, 'CodeSample'),
  env: AGENT_ENV,
  async run({ params: p, inputs, out, ctx }) {
    assertCodeSandbox(); // before any model call: a machine that cannot isolate code fails the node, not each sample
    const agent = await chooseAgent(p, inputs.model?.dir, ctx.env, 'eval-code');
    const load = { humaneval: loadHumanEval, mbpp: loadMbpp, quixbugs: loadQuixBugs }[p.benchmark];
    const tasks = load().slice(0, p.limit);
    ctx.progress.total(tasks.length * p.samples, 'samples');
    setMaxListeners(0, ctx.signal); // every in-flight request / sandbox listens for the node's abort
    const queue = new PQueue({ concurrency: p.concurrency });
    for (let b = 0; b * 20 < tasks.length; b++) {
      const id = `b${String(b).padStart(5, '0')}`;
      const chunk = tasks.slice(b * 20, (b + 1) * 20);
      if (out.hasBatch(id)) { ctx.progress.tick(chunk.length * p.samples); continue; }
      const jobs = chunk.flatMap((t) => Array.from({ length: p.samples }, (_, s) => queue.add(async () => {
        const row = await sample(t, s, agent, ctx.signal);
        ctx.progress.tick();
        return row;
      })));
      await out.writeBatch(id, (await Promise.all(jobs)) as z.input<typeof CodeSampleRow>[]);
    }
  },
});

async function sample(t: CodeTask, s: number, agent: ChatPolicy | 'oracle', signal: AbortSignal) {
  const base = { task_id: t.id, benchmark: t.benchmark, sample: s };
  let code: string;
  if (agent === 'oracle') code = t.reference;
  else {
    try {
      const reply = await agent.respond({ messages: [{ role: 'user', content: `${INSTRUCTION[t.benchmark]}\n\n${t.prompt}`, tool_calls: [], tool_call_id: null, name: null }],
        tools: [], seed: s, signal, idempotencyKey: `code:${t.id}:${s}` });
      code = extractCode(reply.content);
    } catch (e) {
      return { ...base, passed: false, outcome: 'request_error', reason: (e as Error).message.slice(0, 500) };
    }
  }
  if (!code.trim()) return { ...base, passed: false, outcome: 'no_code', reason: 'the reply holds no code' };
  const v = await runCodeTask(t, code, { signal });
  return { ...base, passed: v.passed, outcome: v.outcome, reason: v.reason.slice(0, 500) };
}
