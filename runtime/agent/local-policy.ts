import type { Message } from '../../schemas/message.ts';
import type { ChatPolicy, ChatRequest } from './policy.ts';
import { ChatTokens, decodeIds } from './tokenize.ts';
import { parseAssistant, toAssistantMessage } from './parse.ts';
import { loadPolicy } from './local.ts';

/*
 * A local model artifact (an ONNX export dir: model.onnx + meta.json + tokenizer files) as a ChatPolicy, so
 * benchmarks and synthesis can talk to it like to any endpoint. Prompts are rendered token by token with the
 * model's own chat template; concurrent calls are batched together by the rollout batcher.
 */
export interface LocalPolicyOptions {
  temperature?: number;
  maxTokens?: number;
  maxBatch?: number;
}

export async function localModelPolicy(dir: string, o: LocalPolicyOptions = {}): Promise<ChatPolicy & { close(): Promise<void> }> {
  const policy = await loadPolicy(dir, { maxBatch: o.maxBatch ?? 16 });
  return {
    name: `local:${dir}`,
    async respond(req: ChatRequest): Promise<Message> {
      const chat = new ChatTokens(policy.ct, req.tools);
      for (const m of req.messages) chat.appendMessage(m);
      const out = await policy.gen.generate({
        prompt: chat.generationPrompt(), maxTokens: o.maxTokens ?? 256, stop: [policy.ct.endOfTurnId],
        temperature: o.temperature ?? 0, topP: 1, seed: req.seed ?? 0,
      });
      if (out.finish === 'error') throw new Error(`local model ${dir}: ${out.error ?? 'generation failed'}`);
      return toAssistantMessage(parseAssistant(decodeIds(policy.ct, out.tokens)));
    },
    close: () => policy.engine.close(),
  };
}
