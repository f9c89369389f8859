import type { Message } from '../../schemas/message.ts';
import type { ToolSpec } from '../../schemas/tool.ts';

/**
 * Anything that plays the assistant (or the user) in a conversation: an OpenAI-compatible chat endpoint, the
 * scripted teacher, or a local model behind an inference engine. Synthesis, evaluation and benchmarks all talk
 * to this one interface.
 */
export interface ChatRequest {
  messages: Message[];
  tools: ToolSpec[];
  seed?: number;
  /** Same key → same answer, so a retried or resumed run never duplicates work (sent as a header to servers). */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface ChatPolicy {
  readonly name: string;
  respond(req: ChatRequest): Promise<Message>;
}
