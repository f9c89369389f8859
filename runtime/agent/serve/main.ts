/*
 * The `agentforge serve` process (the CLI starts it: runtime/engine/cli/commands.ts). Also runnable directly:
 *   node --import tsx runtime/agent/serve/main.ts MODEL_DIR [--port N] ...
 * Prints one JSON line {url, port, policy_version} once listening. Exits on SIGINT/SIGTERM, and, started by the CLI
 * (AGENTFORGE_SERVE_PARENT_PIPE=1), when its stdin closes: the CLI process is gone.
 */
import { parseArgs } from 'node:util';
import { serveCommand } from './command.ts';

const options = Object.fromEntries(Object.keys(serveCommand.options).map((k) => [k, { type: 'string' as const }]));
let parsed;
try {
  parsed = parseArgs({ args: process.argv.slice(2), allowPositionals: true, options });
} catch (e) {
  console.error(`error: ${(e as Error).message}\nusage: agentforge ${serveCommand.usage}`);
  process.exit(2);
}
if (process.env.AGENTFORGE_SERVE_PARENT_PIPE === '1') {
  process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
  process.stdin.resume();
}
serveCommand.run(parsed.positionals, parsed.values as Record<string, unknown>).then(
  (code) => process.exit(code),
  (e) => {
    console.error(e?.name === 'UsageError' ? `error: ${e.message}` : (e?.stack ?? String(e)));
    process.exit(e?.name === 'UsageError' ? 2 : 1);
  },
);
