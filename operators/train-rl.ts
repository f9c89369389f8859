/*
 * train-rl: multi-turn GRPO on the train tasks: rollouts (the agent loop on an in-process ORT engine, or on rollout
 * servers: agentforge serve, vLLM, SGLang) → mixed reward → advantages → step file → GRPO step in the runtime node →
 * ONNX export → weight reload (runtime/rl/rl-loop.ts). Synchronous by default; max_staleness k >= 1 runs the next
 * k steps' rollouts while a step trains (asynchronous RL), training only on samples at most k versions old.
 * Output: the RL policy (HF dir) with the run's step files inside it at steps/ (the rl-rollouts operator turns them
 * into a table). Killed and rerun, it resumes at the trainer's last checkpoint and replays the stored rollouts
 * after it, so no step is lost or counted twice.
 */
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { model, operator, table } from '../runtime/engine/operator.ts';
import { Task } from '../schemas/task.ts';
import { RlSession } from '../runtime/node/rl-session.ts';
import { RlTrainerParams } from '../runtime/node/protocol.ts';
import { forwardEvents, nodeCode } from '../runtime/node/bridge.ts';
import { RlLoopParams, rlLoop } from '../runtime/rl/rl-loop.ts';
import { RUN_STEPS_DIR, StepStore } from '../runtime/rl/steps.ts';

export const TrainRlParams = RlLoopParams.extend({
  /** Train only on these worlds' tasks (an RL expert per domain); null = every world in the input. */
  worlds: z.array(z.string()).min(1).nullable().default(null),
  ...RlTrainerParams.shape,
  /** Trainer processes (torchrun; `parallel` picks DDP or FSDP); the rollout side stays one process. */
  trainer_nproc: z.number().int().min(1).default(1),
});

export const trainRl = operator({
  name: 'train-rl',
  version: 8, // 8: the repo world's submit ends the episode; 7: lora (peft; the engines get merged weights), gradient_checkpointing, trainer_nproc + parallel
  // 6: rollouts run with the model's own context (limits.max_context null), engine params, tool_call_format
  // 5: max_staleness (async), rollout_servers, tool_latency, server_timeout_ms; sync default unchanged
  description: 'multi-turn GRPO: rollouts → rewards → advantages → train step → export → reload, resumable',
  params: TrainRlParams.superRefine((p, ctx) => {
    if (p.screen && (p.screen < 2 || p.screen >= p.group_size || !p.dynamic_sampling)) {
      ctx.addIssue({ code: 'custom', path: ['screen'], message: `screen ${p.screen} needs dynamic_sampling and 2 <= screen < group_size (${p.group_size}); 0 turns it off` });
    }
  }),
  inputs: { tasks: table(Task, 'Task'), model: model() },
  output: model(),
  resources: ['gpu'],
  codeDeps: nodeCode('rl_session.py'),
  async run({ params: p, inputs, out, ctx }) {
    const tasks = (await inputs.tasks.all()).filter((t) => t.split === 'train' && (p.worlds === null || p.worlds.includes(t.world)))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    if (!tasks.length) throw new Error(`train-rl: input tasks (node ${inputs.tasks.node}) have no train task${p.worlds ? ` of worlds ${p.worlds.join(', ')}` : ''}`);
    const trainer = { ...RlTrainerParams.parse(p), model_dir: inputs.model.dir, checkpoint_dir: join(ctx.checkpointDir, 'trainer') };
    const store = new StepStore(join(ctx.checkpointDir, 'steps'));
    const session = await RlSession.start({ signal: ctx.signal, onEvent: forwardEvents(ctx), nproc: p.trainer_nproc });
    ctx.progress.total(p.steps, 'steps');
    try {
      const r = await rlLoop({ tasks, params: p, session, trainer, exportDir: join(ctx.checkpointDir, 'export'), store,
        signal: ctx.signal, metric: ctx.metric, log: ctx.log, afterStep: (s) => ctx.progress.set(s) });
      ctx.log(`train-rl: ${r.finalStep} steps (resumed at ${r.resumedFrom}; replayed ${r.replayed.length}, generated ${r.generated.length})`);
      await session.state({ ...trainer, save_dir: out.dir });
    } finally {
      await session.close().catch(() => session.kill());
    }
    cpSync(store.dir, join(out.dir, RUN_STEPS_DIR), { recursive: true });
  },
});
