import type { Message } from '../../schemas/message.ts';
import type { ChatPolicy, ChatRequest } from './policy.ts';
import { ChatTokens, decodeIds } from './tokenize.ts';
import { toAssistantMessage } from './parse.ts';
import { loadPolicy, modelContext, type EngineParams } from './local.ts';
import { parseTurn } from './tool-formats.ts';

/*
 * A local model artifact (an ONNX export dir: model.onnx + meta.json + tokenizer files) as a ChatPolicy, so
 * benchmarks and synthesis can talk to it like to any endpoint. Prompts are rendered token by token with the
 * model's own chat template; concurrent calls are batched together by the rollout batcher. The context is the
 * model's own (its config's max_position_embeddings) unless `maxContext` caps it: τ-bench's first prompts alone
 * are 4,148-4,557 tokens.
 */
export interface LocalPolicyOptions {
  temperature?: number;
  maxTokens?: number;
  maxBatch?: number;
  /** Prompt + generation tokens; absent or null: the model's own context. */
  maxContext?: number | null;
  engine?: EngineParams;
  /** The tool-call format to parse replies with (tool-formats.ts); absent: the one the chat template renders. */
  toolCallFormat?: string | null;
}

export async function localModelPolicy(dir: string, o: LocalPolicyOptions = {}): Promise<ChatPolicy & { close(): Promise<void> }> {
  const policy = await loadPolicy(dir, { maxBatch: o.maxBatch ?? 16, maxContext: o.maxContext, engine: o.engine, toolCallFormat: o.toolCallFormat });
  const from = modelContext(dir);
  const context = o.maxContext != null ? `the context of ${policy.maxContext} tokens (max_context)`
    : `the model's context of ${policy.maxContext} tokens${from ? ` (${from.from})` : ' (its config gives none: the default)'}`;
  return {
    name: `local:${dir}`,
    async respond(req: ChatRequest): Promise<Message> {
      const chat = new ChatTokens(policy.ct, req.tools);
      for (const m of req.messages) chat.appendMessage(m);
      const prompt = chat.generationPrompt();
      const room = policy.maxContext - prompt.length;
      if (room < 1) throw new Error(`local model ${dir}: the prompt is ${prompt.length} tokens, which leaves no room in ${context}; shorten the conversation or raise max_context`);
      const out = await policy.gen.generate({
        prompt, maxTokens: Math.min(o.maxTokens ?? 256, room), stop: [policy.ct.endOfTurnId],
        temperature: o.temperature ?? 0, topP: 1, seed: req.seed ?? 0,
      });
      if (out.finish === 'error') throw new Error(`local model ${dir}: ${out.error ?? 'generation failed'}`);
      return toAssistantMessage(parseTurn(policy.ct, decodeIds(policy.ct, out.tokens)));
    },
    close: () => policy.engine.close(),
  };
}
