import { z } from 'zod';
import type { ChatPolicy } from '../agent/policy.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openAIChatPolicy } from '../agent/engines/openai-chat.ts';
import { localModelPolicy } from '../agent/local-policy.ts';
import { DEFAULT_ENGINE, EngineParams } from '../agent/local.ts';

/*
 * Which ChatPolicy a benchmark evaluates. `endpoint`: an OpenAI-compatible server (base_url/model params, or
 * AGENTFORGE_OPENAI_BASE_URL / AGENTFORGE_OPENAI_MODEL; the key comes from AGENTFORGE_OPENAI_API_KEY, never a
 * param, so it stays out of cache keys and logs). `model`: the model artifact wired into the node's `model` input.
 * `oracle`: the benchmark's own reference answers (gold actions, possible answers, canonical solutions) — the
 * self-test of the harness and the smoke run of the DAG.
 */
export const AgentParams = z.object({
  agent: z.enum(['endpoint', 'model', 'oracle']).default('endpoint'),
  base_url: z.string().optional(),
  model: z.string().optional(),
  temperature: z.number().min(0).optional(),
  max_tokens: z.number().int().min(1).optional(),
  /** agent 'model': prompt + generation tokens; null = the model's own context (its config's max_position_embeddings). */
  max_context: z.number().int().min(16).nullable().default(null),
  /** agent 'model': the in-process engine's threads and prefix cache. */
  engine: EngineParams.default(DEFAULT_ENGINE),
  /** agent 'model': how the model writes tool calls (runtime/agent/tool-formats.ts: hermes, llama3-json, mistral); null = the one its chat template renders. */
  tool_call_format: z.string().min(1).nullable().default(null),
  timeout_ms: z.number().int().min(1).default(120_000),
  max_retries: z.number().int().min(0).default(6),
});
export type AgentParams = z.infer<typeof AgentParams>;

export const AGENT_ENV = ['AGENTFORGE_OPENAI_BASE_URL', 'AGENTFORGE_OPENAI_MODEL'];

export function endpointPolicy(p: AgentParams, env: Record<string, string | undefined>, what = 'agent'): ChatPolicy {
  const baseURL = p.base_url ?? env.AGENTFORGE_OPENAI_BASE_URL;
  const model = p.model ?? env.AGENTFORGE_OPENAI_MODEL;
  if (!baseURL || !model) {
    throw new Error(`${what}: agent 'endpoint' needs base_url and model params (or AGENTFORGE_OPENAI_BASE_URL / AGENTFORGE_OPENAI_MODEL), e.g. base_url: 'http://127.0.0.1:8000/v1'`);
  }
  return openAIChatPolicy({ baseURL, model, apiKey: process.env.AGENTFORGE_OPENAI_API_KEY ?? process.env.OPENAI_API_KEY,
    temperature: p.temperature, maxTokens: p.max_tokens, timeoutMs: p.timeout_ms, maxRetries: p.max_retries });
}

/**
 * The policy for `agent: 'endpoint' | 'model'`; `oracle` is resolved by each benchmark. `model` runs the wired
 * artifact locally: an ONNX export dir (export-onnx's output) on onnxruntime-node.
 */
export async function chooseAgent(p: AgentParams, modelDir: string | undefined, env: Record<string, string | undefined>, what: string): Promise<ChatPolicy | 'oracle'> {
  if (p.agent === 'oracle') return 'oracle';
  if (p.agent === 'endpoint') return endpointPolicy(p, env, what);
  if (!modelDir) throw new Error(`${what}: agent 'model' needs a model artifact wired into the node's 'model' input`);
  if (!existsSync(join(modelDir, 'model.onnx'))) {
    throw new Error(`${what}: agent 'model' runs an ONNX export (model.onnx + meta.json); ${modelDir} has none — wire an export-onnx node's output, or serve the model behind an OpenAI-compatible server (e.g. \`vllm serve ${modelDir}\`) and use agent: 'endpoint'`);
  }
  return localModelPolicy(modelDir, { temperature: p.temperature, maxTokens: p.max_tokens, maxContext: p.max_context, engine: p.engine, toolCallFormat: p.tool_call_format });
}
