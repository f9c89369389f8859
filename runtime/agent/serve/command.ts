/*
 * The `serve` CLI command: `agentforge serve MODEL_DIR [--port N] [--host H] [--model NAME]`. Runs until SIGINT or
 * SIGTERM. MODEL_DIR is an ONNX export (export-onnx's or train-rl's output). See ./server.ts for the endpoints.
 */
import type { Command } from '../../engine/cli/commands.ts';
import { UsageError } from '../../engine/scheduler.ts';
import { serve } from './server.ts';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'serve an ONNX export over an OpenAI-compatible HTTP API (chat, completions, weight reload)',
  usage: 'serve MODEL_DIR [--port N] [--host H] [--model NAME] [--max-batch N] [--max-context N] [--threads N] [--prefix-cache-tokens N] [--tool-call-format F]',
  options: {
    port: { type: 'string', help: 'port (default 8000; 0 = any free port)' },
    host: { type: 'string', help: 'address to listen on (default 127.0.0.1)' },
    model: { type: 'string', help: 'model name clients send (default agentforge)' },
    'max-batch': { type: 'string', help: 'sequences decoded together (default 32)' },
    'max-context': { type: 'string', help: 'prompt + generation tokens per sequence (default: the model\'s max_position_embeddings, at least 4096)' },
    device: { type: 'string', help: 'cpu (default) or cuda' },
    threads: { type: 'string', help: 'onnxruntime intra-op threads (default 0: every core)' },
    'prefix-cache-tokens': { type: 'string', help: 'KV of finished sequences kept for reuse, in tokens (0: none; default scales with the model)' },
    'chat-template': { type: 'string', help: 'a Jinja chat template file to use instead of the model\'s' },
    'tool-call-format': { type: 'string', help: 'how the model writes tool calls: hermes, llama3-json, mistral (default: the one its chat template renders)' },
  },
  async run(pos, v) {
    if (!pos[0]) throw new UsageError('missing MODEL_DIR (an ONNX export directory)');
    const int = (k: string, d: number) => {
      if (v[k] === undefined) return d;
      const n = Number(v[k]);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${k} must be a non-negative integer, got '${v[k]}'`);
      return n;
    };
    if (v['max-context'] !== undefined && int('max-context', 0) < 16) throw new UsageError(`--max-context must be at least 16, got '${v['max-context']}'`);
    const device = (v.device as string | undefined) ?? 'cpu';
    if (device !== 'cpu' && device !== 'cuda') throw new UsageError(`--device must be cpu or cuda, got '${device}'`);
    const { readFileSync } = await import('node:fs');
    const server = await serve({
      dir: pos[0], port: int('port', 8000), host: (v.host as string | undefined) ?? '127.0.0.1', model: v.model as string | undefined,
      maxBatch: int('max-batch', 32), maxContext: v['max-context'] === undefined ? undefined : int('max-context', 0), threads: int('threads', 0), device,
      prefixCacheTokens: v['prefix-cache-tokens'] === undefined ? undefined : int('prefix-cache-tokens', 0), toolCallFormat: v['tool-call-format'] as string | undefined,
      chatTemplate: v['chat-template'] ? readFileSync(v['chat-template'] as string, 'utf8') : undefined,
      log: (line) => console.error(line),
    });
    console.log(JSON.stringify({ url: `${server.url}/v1`, port: server.port, policy_version: server.policyVersion }));
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await server.close();
    return 0;
  },
};
