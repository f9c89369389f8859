import { describe, expect, it } from 'vitest';
import { tinyOnnxModel } from '../fixtures/python.ts';
import { localModelPolicy } from '../../runtime/agent/local-policy.ts';
import { chooseAgent, AgentParams } from '../../runtime/eval/agent.ts';

describe('local-model ChatPolicy', () => {
  it('answers a tool-use conversation from an ONNX export, deterministically when greedy', async () => {
    const dir = await tinyOnnxModel(3);
    const policy = await localModelPolicy(dir, { maxTokens: 12 });
    try {
      const req = {
        messages: [{ role: 'system' as const, content: 'Be brief.', tool_calls: [], tool_call_id: null, name: null },
          { role: 'user' as const, content: 'Cancel order #W1234, please.', tool_calls: [], tool_call_id: null, name: null }],
        tools: [{ type: 'function' as const, function: { name: 'cancel_order', description: 'cancel', parameters: { type: 'object', properties: { order_id: { type: 'string' } } } } }],
      };
      const [a, b] = await Promise.all([policy.respond(req), policy.respond(req)]);
      expect(a.role).toBe('assistant');
      expect(a).toEqual(b); // greedy + batched together: same answer
      expect(typeof a.content).toBe('string');
    } finally { await policy.close(); }
  });

  it('benchmarks pick it for agent "model" when the artifact is an ONNX export', async () => {
    const dir = await tinyOnnxModel(3);
    const agent = await chooseAgent(AgentParams.parse({ agent: 'model', max_tokens: 4 }), dir, {}, 'eval-bfcl');
    expect(agent).not.toBe('oracle');
    expect((agent as { name: string }).name).toBe(`local:${dir}`);
    await (agent as unknown as { close(): Promise<void> }).close();
  });
});
