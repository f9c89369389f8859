import { parseArgs } from 'node:util';
import { DagValidationError } from '../dag.ts';
import { UsageError } from '../scheduler.ts';
import { StoreError } from '../../../storage/store.ts';
import { COMMANDS, type Command } from './commands.ts';

/** Exit codes: 0 ok, 1 a node failed, 2 bad usage or definition, 130 interrupted. */
const USAGE = `agentforge — typed operators in a declarative DAG, incremental reruns, SQL over every table

usage: agentforge <command> [options]

commands:
${Object.values(COMMANDS).map((c) => `  ${c.name.padEnd(8)} ${c.summary}`).join('\n')}

Every command takes --store DIR (default ./.agentforge, or $AGENTFORGE_STORE) and --help.`;

function helpFor(c: Command): string {
  const opts = Object.entries(c.options).map(([k, o]) => `  --${k}${o.type === 'string' ? ' VALUE' : ''}${o.multiple ? ' (repeatable)' : ''}  ${o.help}`);
  return `usage: agentforge ${c.usage}\n\n${c.summary}\n\noptions:\n${opts.join('\n')}\n  --store DIR  the store (default ./.agentforge or $AGENTFORGE_STORE)\n  --help`;
}

/** `agentforge sql … | head`: a reader that stops early is no error (Unix filters go quietly); the command ends as it would. */
function quietOnClosedStdout(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });
}

export async function main(argv: string[]): Promise<number> {
  quietOnClosedStdout();
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') { console.log(USAGE); return name ? 0 : 2; }
  const cmd = COMMANDS[name];
  if (!cmd) { console.error(`unknown command '${name}'\n\n${USAGE}`); return 2; }
  let parsed;
  try {
    const options = Object.fromEntries(Object.entries(cmd.options).map(([k, o]) => [k, { type: o.type, multiple: !!o.multiple }]));
    parsed = parseArgs({ args: rest, allowPositionals: true, options: { ...options, store: { type: 'string' }, help: { type: 'boolean' } } });
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${helpFor(cmd)}`);
    return 2;
  }
  if (parsed.values.help) { console.log(helpFor(cmd)); return 0; }
  try {
    return await cmd.run(parsed.positionals, parsed.values as Record<string, unknown>);
  } catch (e) {
    if (e instanceof UsageError || e instanceof DagValidationError || (e instanceof Error && e.name === 'SqlRefused')) { console.error(`error: ${e.message}`); return 2; }
    if (e instanceof StoreError) { console.error(`error: ${e.message}`); return e.message.includes('locked') ? 2 : 1; }
    console.error(e instanceof Error ? e.stack : String(e));
    return 1;
  }
}

// `tsx runtime/engine/cli/main.ts …` (npm run agentforge / demo). bin/agentforge.mjs calls main() itself.
if (process.argv[1] && /cli[\\/]main\.ts$/.test(process.argv[1])) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
