/*
 * `agentforge serve` through the official openai SDK, against a server on 127.0.0.1 over a tiny ONNX Qwen3: greedy
 * tokens and logprobs equal the in-process OrtEngine on the same prompt (chat prompts rendered by ChatTokens, token-id
 * prompts as given), concurrent requests share engine batches, streaming, tool calls in the OpenAI shape, weight
 * reload (ours, SGLang's and vLLM's LoRA path) and clear errors.
 */
import OpenAI from 'openai';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, assistantReply, type RunningServer } from '../../runtime/agent/serve/server.ts';
import { OrtEngine } from '../../runtime/agent/engines/ort.ts';
import { ChatTokens, loadChatTokenizer, type ChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { ToolSpec } from '../../schemas/tool.ts';
import type { Message } from '../../schemas/message.ts';
import { REPO, tinyOnnxModel } from '../fixtures/python.ts';

const TOOLS = [{ type: 'function' as const, function: { name: 'add', description: 'adds two numbers', parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } } } } }];
const m = (role: Message['role'], content: string, extra: Partial<Message> = {}): Message => ({ role, content, tool_calls: [], tool_call_id: null, name: null, ...extra });

let dir0: string;
let dir1: string;
let server: RunningServer;
let client: OpenAI;
let ref0: OrtEngine;
let ref1: OrtEngine;
let ct: ChatTokenizer;

beforeAll(async () => {
  [dir0, dir1] = await Promise.all([tinyOnnxModel(0), tinyOnnxModel(1)]);
  server = await serve({ dir: dir0, maxBatch: 8, maxContext: 1024 });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  [ref0, ref1] = await Promise.all([OrtEngine.load(dir0, { maxBatch: 8, maxContext: 1024 }), OrtEngine.load(dir1, { maxBatch: 8, maxContext: 1024 })]);
  ct = loadChatTokenizer(dir0);
}, 900_000);
afterAll(async () => { await server?.close(); await ref0?.close(); await ref1?.close(); });

function promptOf(messages: Message[]): number[] {
  const c = new ChatTokens(ct, TOOLS.map((t) => ToolSpec.parse(t)));
  for (const x of messages) c.appendMessage(x);
  return c.generationPrompt();
}
const greedy = (prompt: number[], maxTokens: number, stop: number[] = [ct.endOfTurnId]) => ({ prompt, maxTokens, stop, temperature: 0, topP: 1, seed: 0 });

describe('agentforge serve (openai SDK)', () => {
  it('chat: greedy tokens, logprobs and usage equal the in-process engine on the ChatTokens prompt', async () => {
    const msgs = [m('system', 'You help with sums.'), m('user', 'What is 2 + 3?')];
    const r = await client.chat.completions.create({ model: 'agentforge', messages: msgs.map(({ role, content }) => ({ role, content })) as never,
      tools: TOOLS, temperature: 0, max_tokens: 12, logprobs: true });
    const prompt = promptOf(msgs);
    const [g] = await ref0.generate([greedy(prompt, 12)]);
    const c = r.choices[0] as typeof r.choices[0] & { token_ids: number[] };
    expect(c.token_ids).toEqual(g.tokens);
    expect(r.usage).toMatchObject({ prompt_tokens: prompt.length, completion_tokens: g.tokens.length });
    expect(c.logprobs!.content!.map((x) => x.logprob)).toEqual(g.logprobs.map((x) => expect.closeTo(x, 5)));
    expect(c.finish_reason).toBe(g.finish === 'stop' ? 'stop' : 'length');
    expect((r as unknown as { policy_version: number }).policy_version).toBe(0);
  }, 60_000);

  it('chat: an assistant tool call and its result in the request render exactly as ChatTokens renders them', async () => {
    const call = { id: 'call_0', name: 'add', arguments: { a: 2, b: 3 }, raw: '{"a": 2, "b": 3}' };
    const msgs = [m('user', 'add 2 and 3'), m('assistant', '', { tool_calls: [call] }), m('tool', '5', { tool_call_id: 'call_0', name: 'add' })];
    const r = await client.chat.completions.create({ model: 'agentforge', tools: TOOLS, temperature: 0, max_tokens: 4, messages: [
      { role: 'user', content: 'add 2 and 3' },
      { role: 'assistant', content: '', tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'add', arguments: '{"a": 2, "b": 3}' } }] },
      { role: 'tool', tool_call_id: 'call_0', content: '5' },
    ] });
    expect((r as unknown as { prompt_token_ids: number[] }).prompt_token_ids).toEqual(promptOf(msgs.map((x) => (x.role === 'tool' ? { ...x, name: null } : x))));
  }, 60_000);

  it("the model's <tool_call> format comes back as OpenAI tool_calls (a malformed one keeps its raw text)", () => {
    const r = assistantReply('Let me add.\n<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>\n<tool_call>\n{"name": "add", "arguments": {oops}\n</tool_call><|im_end|>', 'call_x_');
    expect(r.content).toBe('Let me add.');
    expect(r.tool_calls[0]).toEqual({ id: 'call_x_0', type: 'function', function: { name: 'add', arguments: '{"a":2,"b":3}' } });
    expect(r.tool_calls[1].function.name).toBe('add');
    expect(r.tool_calls[1].function.arguments).toContain('oops');
    expect(assistantReply('<tool_call>\n{"name": "add", "arguments": {}}\n</tool_call><|im_end|>', 'c').content).toBeNull();
  });

  it('completions: token ids in, token ids and logprobs out (vLLM return_tokens_as_token_ids), n samples seeded', async () => {
    const prompt = promptOf([m('user', 'hello there')]);
    const r = await client.completions.create({ model: 'agentforge', prompt, max_tokens: 10, temperature: 0, logprobs: 1,
      return_tokens_as_token_ids: true, stop_token_ids: [ct.endOfTurnId] } as never);
    const [g] = await ref0.generate([greedy(prompt, 10)]);
    const c = r.choices[0];
    expect(c.logprobs!.tokens!.map((t) => Number(t.replace('token_id:', '')))).toEqual(g.tokens);
    expect(c.logprobs!.token_logprobs).toEqual(g.logprobs.map((x) => expect.closeTo(x, 5)));
    const s = await client.completions.create({ model: 'agentforge', prompt, max_tokens: 6, temperature: 1, seed: 11, n: 3, logprobs: 1 });
    const again = await client.completions.create({ model: 'agentforge', prompt, max_tokens: 6, temperature: 1, seed: 11, n: 3, logprobs: 1 });
    expect(s.choices.map((x) => x.text)).toEqual(again.choices.map((x) => x.text));
    expect(s.choices).toHaveLength(3);
  }, 60_000);

  it('concurrent clients share engine batches and get the tokens they would get alone', async () => {
    const prompts = Array.from({ length: 8 }, (_, i) => promptOf([m('user', `question number ${i} ${'x'.repeat(i)}`)]));
    const before = server.batchSizes.length;
    const rs = await Promise.all(prompts.map((prompt) => client.completions.create({ model: 'agentforge', prompt, max_tokens: 8, temperature: 0, logprobs: 1, return_tokens_as_token_ids: true } as never)));
    const alone = await Promise.all(prompts.map(async (p) => (await ref0.generate([greedy(p, 8, [])]))[0].tokens));
    rs.forEach((r, i) => expect(r.choices[0].logprobs!.tokens!.map((t) => Number(t.slice(9))), `prompt ${i}`).toEqual(alone[i]));
    expect(Math.max(...server.batchSizes.slice(before))).toBeGreaterThan(1);
  }, 60_000);

  it('streams chat as server-sent events', async () => {
    const msgs = [{ role: 'user' as const, content: 'stream please' }];
    const full = await client.chat.completions.create({ model: 'agentforge', messages: msgs, temperature: 0, max_tokens: 8 });
    const stream = await client.chat.completions.create({ model: 'agentforge', messages: msgs, temperature: 0, max_tokens: 8, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) { text += chunk.choices[0]?.delta?.content ?? ''; finish = chunk.choices[0]?.finish_reason ?? finish; }
    expect(text).toBe(full.choices[0].message.content ?? '');
    expect(finish).toBe(full.choices[0].finish_reason);
  }, 60_000);

  it('reloads new weights as policy version v: ours, SGLang update_weights_from_disk and vLLM load_lora_adapter', async () => {
    const prompt = promptOf([m('user', 'after reload')]);
    const post = (path: string, body: unknown) => fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const ask = async (model = 'agentforge') => (await client.completions.create({ model, prompt, max_tokens: 8, temperature: 0, logprobs: 1, return_tokens_as_token_ids: true } as never)) as unknown as
      { policy_version: number; model: string; choices: Array<{ logprobs: { tokens: string[] } }> };
    const ids = (r: Awaited<ReturnType<typeof ask>>) => r.choices[0].logprobs.tokens.map((t) => Number(t.slice(9)));
    const [g0] = await ref0.generate([greedy(prompt, 8, [])]);
    const [g1] = await ref1.generate([greedy(prompt, 8, [])]);
    expect(g1.tokens).not.toEqual(g0.tokens);

    expect(await (await post('/v1/reload', { dir: dir1, version: 7 })).json()).toEqual({ ok: true, policy_version: 7 });
    let r = await ask();
    expect([r.policy_version, ids(r)]).toEqual([7, g1.tokens]);

    expect((await (await post('/update_weights_from_disk', { model_path: dir0 })).json()).success).toBe(true);
    r = await ask();
    expect([r.policy_version, ids(r)]).toEqual([0, g0.tokens]); // meta.json's policy_version

    const lora = await post('/v1/load_lora_adapter', { lora_name: 'agentforge-v9', lora_path: dir1 });
    expect(lora.status).toBe(200);
    r = await ask('agentforge-v9');
    expect([r.policy_version, r.model, ids(r)]).toEqual([9, 'agentforge-v9', g1.tokens]);

    const bad = await post('/v1/reload', { dir: '/nonexistent/export' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/meta\.json.*ONNX export/);
    expect((await ask()).policy_version).toBe(9); // a failed reload keeps the weights it had
  }, 120_000);

  it('device cuda without onnxruntime\'s CUDA build fails naming the fix', async () => {
    const ort = await import('onnxruntime-node');
    const cuda = (ort as unknown as { listSupportedBackends?: () => Array<{ name: string; bundled: boolean }> }).listSupportedBackends?.().find((b) => b.name === 'cuda');
    if (cuda?.bundled !== false) return; // a CUDA build is installed here: nothing to refuse
    await expect(serve({ dir: dir0, device: 'cuda' })).rejects.toThrow(/CUDA build.*or use device cpu/);
  }, 60_000);

  it('`agentforge serve` from the CLI: listens, answers, and stops with its server process on SIGTERM', async () => {
    const cli = spawn(process.execPath, [`${REPO}/bin/agentforge.mjs`, 'serve', dir0, '--port', '0', '--max-batch', '4'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AGENTFORGE_BUNDLE: '0' } });
    const exited = new Promise<number | null>((r) => cli.once('exit', (code) => r(code)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: cli.stdout! }).once('line', resolve);
        cli.once('exit', (code) => reject(new Error(`agentforge serve exited with ${code} before listening`)));
      });
      const { url } = JSON.parse(line) as { url: string };
      const models = (await (await fetch(`${url}/models`)).json()) as { data: Array<{ id: string }> };
      expect(models.data.map((m) => m.id)).toEqual(['agentforge']);
      cli.kill('SIGTERM');
      expect(await exited).toBe(0);
      await expect(fetch(`${url}/models`)).rejects.toThrow();
    } finally {
      if (cli.exitCode === null) cli.kill('SIGKILL');
    }
  }, 120_000);

  it('errors name the problem: unknown model (404), bad prompt ids and bodies (400)', async () => {
    await expect(client.chat.completions.create({ model: 'gpt-nope', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404, message: expect.stringMatching(/gpt-nope.*not served/) });
    await expect(client.completions.create({ model: 'agentforge', prompt: [1, 10 ** 9] })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/token 1 = 1000000000/) });
    const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: '{not json' });
    expect(res.status).toBe(400);
  }, 30_000);
});
