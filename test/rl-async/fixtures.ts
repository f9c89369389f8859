/*
 * A tiny Qwen3 that acts: the random-weight fixture model taught (with the RL trainer itself, positive advantage on
 * gold trajectories = supervised fine-tuning) to answer a retail order-status task with get_order calls. A random
 * model never calls a tool, so its episodes are one turn and tool latency never shows; this one makes multi-turn
 * episodes (a call, then another call or an answer), which is what asynchronous RL is measured on. Built once per
 * version of this file into the fixture cache.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RlSession } from '../../runtime/node/rl-session.ts';
import { loadChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { BatchingGenerator } from '../../runtime/agent/batcher.ts';
import { runRollout } from '../../runtime/agent/loop.ts';
import { scriptedUser } from '../../runtime/agent/scripted.ts';
import { openWorld } from '../../runtime/worlds/index.ts';
import { pythonBin, tinyOnnxModel } from '../fixtures/python.ts';
import { goldStatus, ScriptedEngine, statusTasks } from '../rollout/helpers.ts';

export const LIMITS = { maxTurns: 4, maxNewTokens: 48, maxContext: 4096, maxRepeats: 3 };
const STEPS = 40;

/** HF dir of the tool-calling model (its ONNX export is `${dir}/onnx`). */
export async function toolCallingModel(): Promise<string> {
  const base = await tinyOnnxModel(0);
  const hash = createHash('sha256').update(readFileSync(fileURLToPath(import.meta.url))).update(base).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), 'agentforge-fixtures', `tool-calling-${hash}`);
  if (existsSync(join(dir, '.done'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  const ct = loadChatTokenizer(base);
  const gen = new BatchingGenerator(new ScriptedEngine(ct, goldStatus), 16);
  const rows = await Promise.all(statusTasks(24).map((task, i) => runRollout({ task, id: `gold${i}`, groupId: 'gold', sample: i, seed: i, step: 0 },
    { world: openWorld(task.world), user: scriptedUser(task), gen, ct, limits: LIMITS, sampling: { temperature: 0, topP: 1 } })));
  const samples = rows.map((r) => ({ input_ids: r.input_ids, loss_mask: r.loss_mask, advantage: 1, policy_version: 0,
    // any behaviour logprob far below the trainer's makes the TIS weight its cap: a constant, so this is plain SFT
    behaviour_logprobs: r.loss_mask.map((m) => (m ? -30 : 0)) }));
  const session = await RlSession.start({ python: await pythonBin() });
  const trainer = { model_dir: base, checkpoint_dir: null, device: 'cpu' as const, lr: 3e-3, tis_cap: 2, micro_batch_size: 24, seed: 0 };
  try {
    await session.state(trainer);
    for (let v = 1; v <= STEPS; v++) {
      await session.step({ ...trainer, step: v, samples, ...(v === STEPS ? { save_dir: tmp, export_dir: join(tmp, 'onnx') } : {}) });
    }
  } finally {
    await session.close().catch(() => session.kill());
  }
  writeFileSync(join(tmp, '.done'), '');
  try { renameSync(tmp, dir); } catch { rmSync(tmp, { recursive: true, force: true }); }
  return dir;
}
