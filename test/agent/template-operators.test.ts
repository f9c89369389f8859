/*
 * The chat_template param of the operators that serve a local model (evaluate, rollout): an export whose own
 * template drops tools is refused by default, naming the fix, and runs with a tools-aware override.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { evaluate } from '../../operators/evaluate.ts';
import { makeTasks } from '../../operators/make-tasks.ts';
import { rollout } from '../../operators/rollout.ts';
import { CHAT_TEMPLATE } from '../../runtime/agent/chat-template.ts';
import { dag } from '../../runtime/engine/dag.ts';
import { files, operator } from '../../runtime/engine/operator.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { tinyOnnxModel } from '../fixtures/python.ts';

const CHATML = "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
const LIMITS = { max_turns: 1, max_new_tokens: 2, max_context: 16_384, max_repeats: 3 };
const stores: string[] = [];
afterAll(() => { for (const s of stores) rmSync(s, { recursive: true, force: true }); });

describe('chat_template param of evaluate and rollout', () => {
  it('a plain-ChatML export is refused without it and runs with it', async () => {
    const onnx = await tinyOnnxModel();
    const exported = operator({
      name: 'test-chatml-export', version: 1, params: z.object({ dir: z.string() }), inputs: {}, output: files(),
      async run({ params, out }) { cpSync(params.dir, out.dir, { recursive: true }); writeFileSync(join(out.dir, 'chat_template.jinja'), CHATML); },
    });
    const build = (chat_template: string | null) => dag('tpl-ops', (d) => {
      const tasks = d.node('tasks', makeTasks, { worlds: ['retail'], n: 2, seed: 1, split: 'heldout', max_difficulty: 1, distractor_rate: 0 });
      const m = d.node('model', exported, { dir: onnx });
      d.node('eval', evaluate, { labels: ['m'], limits: LIMITS, concurrency: 2, chat_template }, { tasks, models: [m] });
      d.node('roll', rollout, { split: 'heldout', group_size: 1, limits: LIMITS, concurrency: 2, chat_template }, { tasks, policy: m });
    });
    const store = mkdtempSync(join(tmpdir(), 'af-tplops-'));
    stores.push(store);
    const refused = await runDag(build(null), { storeDir: store });
    for (const n of ['eval', 'roll']) expect(refused.nodes.get(n)?.error, n).toMatch(/drops the tool list .*pass a tools-aware template as params.chat_template/);
    const ok = await runDag(build(CHAT_TEMPLATE), { storeDir: store });
    for (const n of ['eval', 'roll']) expect(ok.nodes.get(n)?.error, n).toBeUndefined();
  }, 300_000);
});
